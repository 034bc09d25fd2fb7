# SViTT at 4 frames = the dense baseline (dense_4f.py) + the sparsity settings below; nothing else differs.
#   python tools/train.py configs/svitt_4f.py
_base_ = ['dense_4f.py']

model = dict(
    vision_encoder=dict(
        # Edge sparsity: the local tokens are cut into blocks of 56; each query block attends to the
        # [CLS] token, to its own block (local_blocks=1) and to 3 random other blocks.
        attention=dict(type='BlockSparseAttention', block_size=56, local_blocks=1, random_blocks=3),
        # Node sparsity in the video encoder: after layers 3, 6 and 9 keep the 70 % of the tokens that
        # the [CLS] token attends to most.
        pruner=dict(type='ClsAttentionPruner', keep_rate=0.7),
        prune_layers=(3, 6, 9),
    ),
    # Node sparsity in the multimodal encoder: after the first fusion layer keep the 10 % of the visual
    # tokens that the text [CLS] attends to most (plus the visual [CLS]).
    text_encoder=dict(pruner=dict(type='TextGuidedPruner', keep_rate=0.1, layer=0)),
)
