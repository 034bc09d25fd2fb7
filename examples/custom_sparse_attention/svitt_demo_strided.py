# The dense demo with a custom sparse attention operator that lives outside svitt_mm (strided_attention.py).
#   python tools/train.py examples/custom_sparse_attention/svitt_demo_strided.py
_base_ = ['../../configs/demo/dense_demo.py']

# Imported (and so registered into ATTENTION_OPS) when the config is loaded. The dotted name resolves from
# the repo root, which tools/train.py puts on sys.path.
custom_imports = dict(imports=['examples.custom_sparse_attention.strided_attention'],
                      allow_failed_imports=False)

model = dict(
    vision_encoder=dict(
        # 64x64 frames in 16x16 patches: 4 rows of 4 patches per frame, raster order. Blocks of one patch
        # row with stride 4 (= rows per frame): each row attends to [CLS] and to the same row in every frame.
        attention=dict(type='StridedBlockAttention', block_size=4, stride=4, local_blocks=1),
    ),
)
