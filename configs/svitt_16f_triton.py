# SViTT at 16 frames (svitt_16f.py) with the block-sparse attention run by Triton kernels that read each
# query block's keys and values in place (no gathered or tiled copies), forward and backward. Same pattern
# and outputs as the gather operator; on CPU without Triton's interpreter it runs the gather path.
#   python tools/benchmark.py configs/dense_16f.py configs/svitt_16f_triton.py --device cuda --dtype bfloat16
_base_ = ['svitt_16f.py']

model = dict(vision_encoder=dict(attention=dict(type='TritonBlockSparseAttention')))
