# SViTT at 16 frames (svitt_16f.py) with the block-sparse attention run by FlexAttention: compiled fused
# kernels on GPUs, each block of 56 tokens padded to a 64-token tile. Same pattern and outputs as the
# gather operator; use it on CUDA (on CPU the gather operator is faster and flex has no backward).
#   python tools/benchmark.py configs/dense_16f.py configs/svitt_16f_flex.py --device cuda --dtype bfloat16
_base_ = ['svitt_16f.py']

model = dict(vision_encoder=dict(attention=dict(type='FlexBlockSparseAttention')))
