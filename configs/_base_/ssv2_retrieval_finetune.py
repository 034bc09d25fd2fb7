# Something-Something v2 retrieval (reference doc, section 5.2), shared by the label and template
# configs: many videos share one caption, so training pairs with the same caption are positives of each
# other (positives='caption'); text length 25. No horizontal flip: SSv2 captions say "left"/"right"
# (SViTT flipped them, turning the labels wrong).
_base_ = ['retrieval_finetune.py']  # stated before the import (classic config)
from svitt_mm.datasets.pipelines import retrieval_pipelines  # noqa: E402

train_pipeline, test_pipeline = retrieval_pipelines(
    num_frames=4, img_size=224, tokenizer='data/pretrained/bert-base-uncased', max_text_len=25,
    num_test_clips=3, flip=False)
train_dataloader = dict(dataset=dict(media_root='data/ssv2/videos', positives='caption',
                                     pipeline=train_pipeline))
# Evaluation: one query per distinct caption, positive for every video that has it.
val_dataloader = dict(dataset=dict(media_root='data/ssv2/videos', positives='caption',
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
