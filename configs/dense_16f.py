# Dense baseline at 16 frames (same model as dense_4f.py; longer clips).
#   python tools/train.py configs/dense_16f.py
_base_ = ['dense_4f.py']  # stated before the import, so that MMEngine reads a classic config
from svitt_mm.datasets.pipelines import retrieval_pipelines  # noqa: E402

num_frames = 16
model = dict(vision_encoder=dict(max_frames=num_frames))

train_pipeline, test_pipeline = retrieval_pipelines(
    num_frames, img_size=224, tokenizer='data/pretrained/bert-base-uncased', max_text_len=32)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
