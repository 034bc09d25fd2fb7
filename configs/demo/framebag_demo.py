# Frame-bag baseline on the built-in temporal demo data = dense_demo.py with the video encoder applied to
# each frame on its own (FrameBagEncoder: per-frame BEiT, mean of the frames' [CLS] and pooled features).
# It cannot tell frame orders apart, so the temporal probe must show no drop for reversed/shuffled frames:
#   python tools/train.py configs/demo/framebag_demo.py
#   python tools/analysis/temporal_probe.py configs/demo/framebag_demo.py work_dirs/framebag_demo/epoch_12.pth
_base_ = ['dense_demo.py']

# The same video encoder as dense_demo.py, applied to one frame at a time.
model = dict(vision_encoder=dict(_delete_=True, type='FrameBagEncoder',
                                 encoder={{_base_.model.vision_encoder}}))
