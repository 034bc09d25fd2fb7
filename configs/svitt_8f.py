# SViTT at 8 frames = dense_8f.py + the sparsity settings below (keep rate 0.6, as in the
# temporal sparse expansion curriculum: more frames, more sparsity).
#   python tools/train.py configs/svitt_8f.py
_base_ = ['dense_8f.py']

model = dict(
    vision_encoder=dict(
        # Edge sparsity: blocks of 56 tokens; [CLS] + own block + 3 random blocks per query block.
        attention=dict(type='BlockSparseAttention', block_size=56, local_blocks=1, random_blocks=3),
        # Node sparsity (video encoder): keep 60 % of the tokens by [CLS] attention after
        # layers 3, 6, 9.
        pruner=dict(type='ClsAttentionPruner', keep_rate=0.6),
        prune_layers=(3, 6, 9),
    ),
    # Node sparsity (multimodal): keep 10 % of the visual tokens after the first fusion layer.
    text_encoder=dict(pruner=dict(type='TextGuidedPruner', keep_rate=0.1, layer=0)),
)
