# Dense baseline at 4 frames: BEiT-base + BERT-base, full attention, no token pruning.
# Pretrain on WebVid-2M, evaluate zero-shot retrieval on MSR-VTT 1k-A (SViTT's pretraining recipe).
#   python tools/train.py configs/dense_4f.py
_base_ = [
    '_base_/models/beit_bert_retrieval.py',
    '_base_/datasets/webvid_msrvtt.py',
    '_base_/schedules/retrieval_adamw.py',
    '_base_/default_runtime.py',
]
num_frames = 4
# The strong dense baseline: the relative position bias is read from its table inside the attention kernel
# (flex_attention on CUDA, chunked fused SDPA on CPU), never materialised as [1, H, N, N] with a gradient.
model = dict(vision_encoder=dict(max_frames=num_frames, attention=dict(type='FusedBiasDenseAttention')))
