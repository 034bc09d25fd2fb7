# The paper-scale retrieval model: BEiT-base video encoder + BERT-base text/fusion encoder.
# This base is *dense*; SViTT's sparsity settings live in configs/svitt_*.py.
model = dict(
    type='VideoTextRetriever',
    data_preprocessor=dict(type='VideoTextDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3),
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
        max_frames=4,  # temporal extent of the relative position bias tables
        attention=dict(type='DenseAttention'),  # edge sparsity: an ATTENTION_OPS entry
        # node sparsity: set `pruner` to a TOKEN_PRUNERS entry, applied after each of `prune_layers`
        prune_layers=(),
        token_order='raster',
        # HF `microsoft/beit-base-patch16-224-pt22k-ft22k` (folder) or a timm BEiT checkpoint file;
        # the 2-D relative position bias is inflated to 3-D on load.
        pretrained='data/pretrained/beit-base-patch16-224-pt22k-ft22k',
    ),
    text_encoder=dict(
        type='BertFusionEncoder',
        pretrained='data/pretrained/bert-base-uncased',  # HF folder (or hub id when online)
        fusion_layer=9,  # layers 0-8 encode text, 9-11 fuse it with the video (cross-attention)
        # `pruner=dict(type='TextGuidedPruner', ...)`: text-guided visual token selection
    ),
    contrastive_head=dict(type='ContrastiveHead', embed_dim=256, temperature=0.07),
    matching_head=dict(type='MatchingHead'),
    loss_weights=dict(itc=1.0, itm=1.0),
)

required_model_inputs = {
    'model.vision_encoder.pretrained':
        'BEiT-base weights: `huggingface-cli download microsoft/beit-base-patch16-224-pt22k-ft22k '
        '--local-dir data/pretrained/beit-base-patch16-224-pt22k-ft22k` (or set the key to a timm '
        'BEiT checkpoint file)',
    'model.text_encoder.pretrained':
        'BERT-base weights and vocabulary: `huggingface-cli download bert-base-uncased --local-dir '
        'data/pretrained/bert-base-uncased`',
}
