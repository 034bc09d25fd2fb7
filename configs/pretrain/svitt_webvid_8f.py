# SViTT pretraining, stage 2 of the curriculum: 8 frames, vision keep rate 0.6 (configs/svitt_8f.py),
# initialised from the last stage-1 checkpoint with a fresh optimiser and schedule. The 4-frame
# checkpoint's temporal relative-position tables (7 offsets) are resized to 15 offsets on load, with the
# symmetric resize of svitt_mm.models.backbones.temporal_bias_resize (SViTT's floor-nearest one maps +1
# to 0 but -1 to -1). The test clip is 8 frames too (SViTT's README kept 4 and crashed).
#   python tools/train.py configs/pretrain/svitt_webvid_8f.py
_base_ = ['../svitt_8f.py']

model = dict(
    type='VideoTextPretrainer',
    # Every weight comes from `load_from`; BEiT and the MLM head need not be loaded first. The BERT
    # folder is still read for the architecture and the tokenizer.
    vision_encoder=dict(pretrained=None),
    lm_head=dict(pretrained=None),
    mlm_prob=0.5,
    loss_weights=dict(itc=1.0, itm=1.0, mlm=1.0),
)
load_from = 'work_dirs/svitt_webvid_4f/epoch_10.pth'

required_curriculum_inputs = {
    'load_from': 'the stage-1 checkpoint: train configs/pretrain/svitt_webvid_4f.py first (or point '
                 'load_from at its last epoch_*.pth)',
}
