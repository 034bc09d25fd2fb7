# Token-reduction comparison: no reduction in the video encoder (all 64 patch tokens in every layer); the
# rest (block-sparse attention, the fusion encoder's text-guided selection) as in cls_pruning.py.
#   python tools/train.py configs/demo/token_reduction/no_reduction.py
_base_ = ['cls_pruning.py']

model = dict(vision_encoder=dict(pruner=None, prune_layers=()))
