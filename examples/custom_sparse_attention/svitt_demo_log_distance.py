# The dense demo with a block pattern that lives outside svitt_mm (log_distance_blocks.py), on any backend.
#   PYTHONPATH=. python tools/train.py examples/custom_sparse_attention/svitt_demo_log_distance.py
_base_ = ['../../configs/demo/dense_demo.py']

# Imported (and so registered into ATTENTION_PATTERNS) when the config is loaded. The dotted name resolves
# from the repo root (PYTHONPATH=.).
custom_imports = dict(imports=['examples.custom_sparse_attention.log_distance_blocks'],
                      allow_failed_imports=False)

model = dict(
    vision_encoder=dict(
        # 64x64 frames in 16x16 patches: 16 tokens per frame, 4 frames, blocks of 4 tokens (one patch row):
        # 16 blocks, each seeing itself and the rows 1, 2 and 4 away (4 rows = one frame back or forward).
        # The sequence is so short that the operator would judge dense attention cheaper; dense_threshold=1.0
        # keeps the block path. backend='auto' takes the fastest backend that runs each call.
        attention=dict(type='BlockSparseAttention', block_size=4,
                       pattern=dict(type='LogDistanceBlocks', max_distance=4), dense_threshold=1.0),
    ),
)
