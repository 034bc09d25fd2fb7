# SViTT's video QA model (reference doc, sections 4.7 and 5.2): the retrieval model's video BEiT-base and
# BERT-base question encoder (layers 9-11 cross-attend to the video; the 8-frame sparsity is set in
# qa_finetune.py) and a 3-layer answer decoder initialised from the question encoder's fusion layers,
# ranking a fixed answer list (k_test 128, clips combined by lse).
_base_ = ['beit_bert_retrieval.py']

model = dict(
    _delete_=True,  # the encoders are the retrieval model's; the heads are QA's
    type='VideoQuestionAnswering',
    data_preprocessor=dict(type='VideoQADataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3),
    vision_encoder={{_base_.model.vision_encoder}},
    text_encoder={{_base_.model.text_encoder}},
    # 3 causal layers (from fusion layers 9-11) + BERT's masked-LM head as the answer-token classifier.
    answer_decoder=dict(type='AnswerDecoder', num_layers=3,
                        pretrained_head='data/pretrained/bert-base-uncased'),
    answer_list=None,  # set by each configs/qa/*.py
    tokenizer='data/pretrained/bert-base-uncased',
    max_answer_len=5,
    k_test=128,
    clip_aggregation='lse',
    decoder_init='fusion_layers',
)

required_model_inputs = {  # merged with the retrieval base's entries for the two encoders
    'model.answer_decoder.pretrained_head': 'BERT-base with its masked-LM head (the same download as the '
                                            'text encoder)',
    'model.tokenizer': 'the BERT-base vocabulary (the same download as the text encoder)',
}
