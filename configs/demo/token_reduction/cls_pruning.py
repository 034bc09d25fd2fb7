# Token-reduction comparison (tools/analysis/compare_token_reduction.py): SViTT's [CLS]-attention pruning.
# = configs/demo/svitt_demo.py (keep 70 % of the patch tokens after layers 1 and 2: 64 -> 45 -> 32).
#   python tools/train.py configs/demo/token_reduction/cls_pruning.py
_base_ = ['../svitt_demo.py']

model = dict(vision_encoder=dict(pruner=dict(type='ClsAttentionPruner', keep_rate=0.7), prune_layers=(1, 2)))
