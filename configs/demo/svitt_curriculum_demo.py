# Temporal sparse expansion on the demo data: svitt_demo.py for 6 epochs at 4 frames (video keep rate
# 0.7), then 6 epochs at 8 frames with a lower keep rate (0.5). Trains on 2 CPU cores in minutes.
#   python tools/train.py configs/demo/svitt_curriculum_demo.py
_base_ = ['svitt_demo.py']

switch_epoch = 6  # of dense_demo.py's 12 epochs (one warm-up + cosine schedule over all of them)

# The relative position tables span the 8-frame clips of the second stage.
model = dict(vision_encoder=dict(max_frames=8))

# A named entry of default_hooks (merged with the base's hooks, unlike a custom_hooks list).
default_hooks = dict(
    curriculum=dict(type='CurriculumHook',
         curriculum=dict(type='TemporalSparseExpansion', by_epoch=True, stages=[
             dict(begin=0, num_frames=4, keep_rate=0.7),
             dict(begin=switch_epoch, num_frames=8, keep_rate=0.5),
         ])),
)
