# AdamW with linear warm-up and cosine decay per iteration, as in SViTT (reference doc, section 5.1).
lr = 3e-5
max_epochs = 10
warmup_epochs = 1
min_lr_ratio = 0.01  # the cosine ends at lr * min_lr_ratio

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.02),
    # No weight decay on biases, norms, layer scales and the temperature (1-D / 0-D parameters).
    paramwise_cfg=dict(bias_decay_mult=0.0, norm_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={'contrastive_head.temperature': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=min_lr_ratio, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=min_lr_ratio, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
# Two-stage retrieval: ITC over the whole split, then ITM re-ranking of each query's top-k candidates.
val_cfg = dict(type='RetrievalValLoop', k_test=128, clip_aggregation='lse', match_batch_size=64)
test_cfg = dict(type='RetrievalTestLoop', k_test=128, clip_aggregation='lse', match_batch_size=64)
val_evaluator = dict(type='RetrievalMetric')
test_evaluator = val_evaluator
