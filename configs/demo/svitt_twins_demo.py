# SViTT on the demo data (svitt_demo.py), trained on batches of caption twins: every caption comes with its
# time-reversed twin ("... moves left" with "... moves right"), so only frame order separates them.
#   python tools/train.py configs/demo/svitt_twins_demo.py
_base_ = ['svitt_demo.py']

train_dataloader = dict(
    drop_last=False,  # the batch sampler drops the incomplete batch itself
    batch_sampler=dict(type='CaptionTwinBatchSampler',
                       swap_words=[('left', 'right'), ('up', 'down'), ('grows', 'shrinks')]),
)
