# Dense baseline at 8 frames: dense_4f.py with 8-frame clips (same model; longer clips).
#   python tools/train.py configs/dense_8f.py
_base_ = ['dense_4f.py']  # stated before the import, so that MMEngine reads a classic config
from svitt_mm.datasets.pipelines import retrieval_clip_length  # noqa: E402

num_frames = 8
model = dict(vision_encoder=dict(max_frames=num_frames))
train_pipeline, test_pipeline, train_dataloader, val_dataloader, test_dataloader = \
    retrieval_clip_length(num_frames)
