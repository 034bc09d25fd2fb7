# SViTT's video QA model (reference doc, sections 4.7 and 5.2): 8-frame sparse video BEiT-base, BERT-base
# question encoder (layers 9-11 cross-attend to the video) and a 3-layer answer decoder initialised from
# the question encoder's fusion layers, ranking a fixed answer list (k_test 128, clips combined by lse).
model = dict(
    type='VideoQuestionAnswering',
    data_preprocessor=dict(type='VideoQADataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3),
    vision_encoder=dict(
        type='VideoBEiT',
        img_size=224,
        patch_size=16,
        embed_dims=768,
        num_layers=12,
        num_heads=12,
        mlp_ratio=4.0,
        layer_scale_init=0.1,
        drop_path_rate=0.1,
        max_frames=8,
        # Edge sparsity: blocks of 56 tokens, each query block sees [CLS], its own block and 3 random ones.
        attention=dict(type='BlockSparseAttention', block_size=56, local_blocks=1, random_blocks=3),
        # Node sparsity at the 8-frame stage: keep 60 % of the tokens after layers 3, 6 and 9.
        pruner=dict(type='ClsAttentionPruner', keep_rate=0.6),
        prune_layers=(3, 6, 9),
        token_order='raster',
        pretrained='data/pretrained/beit-base-patch16-224-pt22k-ft22k',
    ),
    text_encoder=dict(
        type='BertFusionEncoder',
        pretrained='data/pretrained/bert-base-uncased',
        fusion_layer=9,
        # Text-guided node sparsity (SViTT's QA `joint_encoder_args`, ignored by the released code):
        # after fusion layer 9 keep the half of the visual tokens the question attends to most.
        pruner=dict(type='TextGuidedPruner', keep_rate=0.5, layer=0),
    ),
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

required_model_inputs = {
    'model.vision_encoder.pretrained':
        'BEiT-base weights: `huggingface-cli download microsoft/beit-base-patch16-224-pt22k-ft22k '
        '--local-dir data/pretrained/beit-base-patch16-224-pt22k-ft22k`',
    'model.text_encoder.pretrained':
        'BERT-base weights and vocabulary: `huggingface-cli download bert-base-uncased --local-dir '
        'data/pretrained/bert-base-uncased`',
    'model.answer_decoder.pretrained_head': 'BERT-base with its masked-LM head (the same download)',
    'model.tokenizer': 'the BERT-base vocabulary (the same download)',
}
