# SViTT pretraining, stage 3 of the curriculum (in the paper only, not in SViTT's code): 16 frames,
# vision keep rate 0.5 (configs/svitt_16f.py), initialised from the last stage-2 checkpoint with a fresh
# optimiser and schedule; its temporal bias tables (15 offsets) are resized to 31 on load with the
# symmetric resize of svitt_mm.models.backbones.temporal_bias_resize.
#   python tools/train.py configs/pretrain/svitt_webvid_16f.py
_base_ = ['../svitt_16f.py']

model = dict(
    type='VideoTextPretrainer',
    vision_encoder=dict(pretrained=None),  # every weight comes from `load_from`
    lm_head=dict(pretrained=None),
    mlm_prob=0.5,
    loss_weights=dict(itc=1.0, itm=1.0, mlm=1.0),
)
load_from = 'work_dirs/svitt_webvid_8f/epoch_10.pth'

required_curriculum_inputs = {
    'load_from': 'the stage-2 checkpoint: train configs/pretrain/svitt_webvid_8f.py first (or point '
                 'load_from at its last epoch_*.pth)',
}
