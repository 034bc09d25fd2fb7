# AdamW with linear warm-up and cosine decay per iteration, as in SViTT (reference doc, section 5.1).
lr = 3e-5
max_epochs = 10
warmup_epochs = 1
min_lr_ratio = 0.01  # the cosine ends at lr * min_lr_ratio

optim_wrapper = dict(
    # Stops training at a NaN/inf loss, naming the iteration and the loss term (max_skipped_steps=N
    # skips up to N such steps instead).
    type='FiniteLossOptimWrapper',
    max_skipped_steps=0,
    optimizer=dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.02),
    # No weight decay on biases, norms, layer scales and the temperature (1-D / 0-D parameters).
    # bypass_duplicate: an LM head tied to the word embeddings (pretraining, QA) is one parameter under
    # two names, which must go into one group only.
    paramwise_cfg=dict(bias_decay_mult=0.0, norm_decay_mult=0.0, flat_decay_mult=0.0, bypass_duplicate=True,
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
