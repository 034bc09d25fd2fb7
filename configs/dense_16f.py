# Dense baseline at 16 frames: dense_4f.py with 16-frame clips (same model; longer clips).
#   python tools/train.py configs/dense_16f.py
_base_ = ['dense_4f.py']  # stated before the import, so that MMEngine reads a classic config
from svitt_mm.datasets.pipelines import retrieval_clip_length  # noqa: E402

num_frames = 16
model = dict(vision_encoder=dict(max_frames=num_frames))
train_pipeline, test_pipeline, train_dataloader, val_dataloader, test_dataloader = \
    retrieval_clip_length(num_frames)
