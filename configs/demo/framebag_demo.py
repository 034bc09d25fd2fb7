# Frame-bag baseline on the built-in temporal demo data = dense_demo.py with the video encoder applied to
# each frame on its own (FrameBagEncoder: per-frame BEiT, mean of the frames' [CLS] and pooled features).
# It cannot tell frame orders apart, so the temporal probe must show no drop for reversed/shuffled frames:
#   python tools/train.py configs/demo/framebag_demo.py
#   python tools/analysis/temporal_probe.py configs/demo/framebag_demo.py work_dirs/framebag_demo/epoch_12.pth
_base_ = ['dense_demo.py']

model = dict(
    vision_encoder=dict(
        _delete_=True,
        type='FrameBagEncoder',
        encoder=dict(
            type='VideoBEiT',
            img_size=64,
            patch_size=16,
            embed_dims=192,
            num_layers=4,
            num_heads=3,
            mlp_ratio=4.0,
            layer_scale_init=0.1,
            drop_path_rate=0.0,
            max_frames=1,  # one frame per call
            attention=dict(type='DenseAttention'),
            prune_layers=(),
            token_order='raster',
            pretrained=None,
        ),
    ),
)
