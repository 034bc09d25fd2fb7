# Token-reduction comparison: ToMe's bipartite token merging with proportional attention, the same token
# counts as cls_pruning.py (64 -> 45 -> 32 patch tokens; merged tokens are size-weighted averages).
#   python tools/train.py configs/demo/token_reduction/token_merging.py
_base_ = ['cls_pruning.py']

model = dict(vision_encoder=dict(pruner=dict(_delete_=True, type='TokenMerger', keep_rate=0.7)))
