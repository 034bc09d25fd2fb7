# SViTT at 8 frames: svitt_4f.py with 8-frame clips and more node sparsity in the video encoder (keep
# rate 0.6, as in the temporal sparse expansion curriculum: more frames, more sparsity). Edge sparsity
# and the multimodal pruning stay as in svitt_4f.py.
#   python tools/train.py configs/svitt_8f.py
_base_ = ['svitt_4f.py']  # stated before the import, so that MMEngine reads a classic config
from svitt_mm.datasets.pipelines import retrieval_clip_length  # noqa: E402

num_frames = 8
model = dict(vision_encoder=dict(max_frames=num_frames, pruner=dict(keep_rate=0.6)))
train_pipeline, test_pipeline, train_dataloader, val_dataloader, test_dataloader = \
    retrieval_clip_length(num_frames)
