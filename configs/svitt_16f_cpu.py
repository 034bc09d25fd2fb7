# SViTT at 16 frames (svitt_16f.py) with the block-sparse attention run by a C++ kernel on CPU (float32):
# each query block's keys and values are copied into a cache-sized buffer instead of one gathered tensor, and
# the backward recomputes probabilities instead of storing them. Same pattern and outputs as the gather
# operator; on other devices and dtypes, or where the kernel cannot be built, it runs the gather path.
#   python tools/benchmark.py configs/dense_16f.py configs/svitt_16f.py configs/svitt_16f_cpu.py --frames 16
_base_ = ['svitt_16f.py']

model = dict(vision_encoder=dict(attention=dict(type='CpuBlockSparseAttention')))
