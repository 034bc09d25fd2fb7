# The SViTT demo (svitt_demo.py) with BEiT's absolute position embedding switched on: one learned vector per
# patch position (h, w), shared by all frames, added to the patch tokens before the first layer (the [CLS]
# token gets its own slot); zero-initialised here, loaded from BEiT weights that have one. SViTT has none: its
# encoder knows positions only relative to each other, so on a plain background it cannot tell "on the left"
# from "on the right" (docs/analysis.md, "Where things are").
#   python tools/train.py configs/demo/svitt_abs_pos_demo.py
_base_ = ['svitt_demo.py']

model = dict(vision_encoder=dict(use_abs_pos_emb=True))
