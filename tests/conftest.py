import os

import torch

# Tests never reach a model hub.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
# Where there is no GPU, Triton kernels run in Triton's CPU interpreter (read when a kernel is defined).
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')
