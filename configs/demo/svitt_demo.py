# SViTT on the built-in temporal demo data = dense_demo.py + the sparsity settings below.
#   python tools/train.py configs/demo/svitt_demo.py
_base_ = ['dense_demo.py']

model = dict(
    vision_encoder=dict(
        # Edge sparsity: blocks of 8 tokens (half a frame); each query block sees [CLS], its own block
        # and 2 random blocks, i.e. 3 of the 8 blocks of a 4-frame clip. The sequences here are so short
        # that the operator would judge dense attention cheaper (dense_threshold); the demo forces the
        # sparse path so that it exercises it.
        attention=dict(type='BlockSparseAttention', block_size=8, local_blocks=1, random_blocks=2,
                       dense_threshold=1.0),
        # Node sparsity in the video encoder: keep 70 % of the tokens by [CLS] attention after layers
        # 1 and 2 (64 -> 45 -> 32 patch tokens).
        pruner=dict(type='ClsAttentionPruner', keep_rate=0.7),
        prune_layers=(1, 2),
    ),
    # Node sparsity in the multimodal encoder: after the first fusion layer keep the 30 % of the visual
    # tokens the text attends to most (10 of 32), plus the visual [CLS].
    text_encoder=dict(pruner=dict(type='TextGuidedPruner', keep_rate=0.3, layer=0)),
)
