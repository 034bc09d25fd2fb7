# Token-reduction comparison: random pruning (the ablation), the same token counts as cls_pruning.py.
#   python tools/train.py configs/demo/token_reduction/random_pruning.py
_base_ = ['cls_pruning.py']

model = dict(vision_encoder=dict(pruner=dict(_delete_=True, type='RandomPruner', keep_rate=0.7)))
