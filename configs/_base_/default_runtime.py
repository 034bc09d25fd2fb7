# Runtime settings shared by every config: hooks, logging, checkpointing, randomness.
default_scope = 'svitt_mm'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # save_last keeps `last_checkpoint` current, so `--resume` without a path finds it. Checkpoints and
    # that pointer are written to a temporary file and renamed, so a crash never leaves them half-written.
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# RNGStateHook: a resumed run continues the interrupted run's random streams.
# BrokenMediaHook: training replaces undecodable videos (datasets' on_broken_media='skip'); this logs each
# broken file once, the number skipped per epoch, and stops when more than 5 % of an epoch's samples fail.
# CheckedLoadHook: load_from / --resume / tools/test.py refuse a checkpoint of another architecture
# (naming the first setting that differs) unless load_strict = False, and log mismatched keys in a table.
custom_hooks = [dict(type='MetricsTableHook'), dict(type='RNGStateHook'),
                dict(type='BrokenMediaHook', max_skip_fraction=0.05), dict(type='CheckedLoadHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/train.py and tools/test.py switch to gloo on CPU
)
# Off: DDP's per-step search for parameters without gradients is slow; DDP names them if a model has any.
find_unused_parameters = False
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
log_level = 'INFO'
load_from = None
load_strict = True  # False: load_from/resume load the weights that fit a changed architecture
resume = False
# Seed of every RNG (python, numpy, torch, dataloader workers); `--seed` / `--deterministic` override.
randomness = dict(seed=42, deterministic=False)
