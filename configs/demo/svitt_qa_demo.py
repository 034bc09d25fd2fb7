# SViTT video QA on the built-in temporal demo data; trains in a few minutes on 2 CPU cores.
#   python -m svitt_mm.datasets.demo data/demo/temporal_shapes   # once
#   python tools/train.py configs/demo/svitt_qa_demo.py
_base_ = [
    '../_base_/models/tiny_beit_minilm_qa.py',
    '../_base_/datasets/demo_temporal_qa.py',
    '../_base_/schedules/qa_adamw.py',
    '../_base_/default_runtime.py',
]

model = dict(
    answer_list={{_base_.answer_list}},
    vision_encoder=dict(
        # The sparsity of configs/demo/svitt_demo.py: blocks of 8 tokens, [CLS] + own block + 2 random
        # blocks per query block (forced, the clips are too short for the operator to choose it), and
        # 70 % of the tokens kept by [CLS] attention after layers 1 and 2.
        attention=dict(type='BlockSparseAttention', block_size=8, local_blocks=1, random_blocks=2,
                       dense_threshold=1.0),
        pruner=dict(type='ClsAttentionPruner', keep_rate=0.7),
        prune_layers=(1, 2),
    ),
    # SViTT's QA setting: after the first fusion layer keep the half of the visual tokens the question
    # attends to most.
    text_encoder=dict(pruner=dict(type='TextGuidedPruner', keep_rate=0.5, layer=0)),
)

lr = 1e-3
max_epochs = 12
optim_wrapper = dict(
    optimizer=dict(lr=lr, weight_decay=0.02),
    # The pretrained MiniLM parts (embeddings shared with the decoder, and the decoder layers copied
    # from the fusion layers) learn 10x slower than the freshly initialised ones (video encoder,
    # cross-attention, LM head transform).
    paramwise_cfg=dict(custom_keys={
        'text_encoder.embeddings': dict(lr_mult=0.1),
        'self_attn': dict(lr_mult=0.1),
        'ffn': dict(lr_mult=0.1),
    }),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
