# Fine-tuning SViTT for video QA (reference doc, section 5.2): lr 1e-5, linear warm-up from lr x0.1 over
# `warmup_epochs`, then cosine to lr x0.1, batch 32/8, the best checkpoint by validation accuracy.
# Each configs/qa/*.py sets its data (annotation files, answer list) and, where it differs, the schedule.
_base_ = [
    'models/beit_bert_qa.py',
    'datasets/paper_video_qa.py',
    'schedules/qa_adamw.py',
    'default_runtime.py',
]

# From the 8-frame pretraining stage (keep 0.6). Its checkpoint has no decoder: VideoQuestionAnswering
# initialises the decoder from the checkpoint's fusion layers 9-11, embeddings and MLM head on load.
load_from = 'work_dirs/svitt_webvid_8f/epoch_10.pth'
model = dict(
    vision_encoder=dict(
        pretrained=None,  # the video encoder comes from `load_from`
        max_frames=8,
        # Edge sparsity: blocks of 56 tokens, each query block sees [CLS], its own block and 3 random ones.
        attention=dict(type='BlockSparseAttention', block_size=56, local_blocks=1, random_blocks=3),
        # Node sparsity at the 8-frame stage: keep 60 % of the tokens after layers 3, 6 and 9.
        pruner=dict(type='ClsAttentionPruner', keep_rate=0.6),
        prune_layers=(3, 6, 9),
    ),
    # Text-guided node sparsity (SViTT's QA `joint_encoder_args`, ignored by the released code): after
    # fusion layer 9 keep the half of the visual tokens the question attends to most.
    text_encoder=dict(pruner=dict(type='TextGuidedPruner', keep_rate=0.5, layer=0)),
)

lr = 1e-5
max_epochs = 10
warmup_epochs = 0.5
min_lr_ratio = 0.1

optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=min_lr_ratio, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=min_lr_ratio, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(save_best='acc', rule='greater'))

required_finetune_inputs = {
    'load_from': 'a pretrained 8-frame SViTT checkpoint: train configs/pretrain/svitt_webvid_8f.py (or point '
                 'load_from at one)',
}
