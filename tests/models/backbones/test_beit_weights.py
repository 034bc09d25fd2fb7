import math

import pytest
import timm
import torch
from safetensors.torch import load_file
from transformers import BeitConfig, BeitForImageClassification, BeitModel

from svitt_mm.models.backbones import VideoBEiT, inflate_relative_position_table, load_beit_weights
from svitt_mm.models.backbones.temporal_bias_resize import resize_temporal_bias
from svitt_mm.registry import BACKBONES

SIZES = dict(img_size=16, patch_size=4, embed_dims=16, num_layers=2, num_heads=2, mlp_ratio=2.0,
             drop_path_rate=0.0)
NUM_SPATIAL = 7 * 7  # (2*4-1)^2 spatial offsets of a 4x4 patch grid


def randomise_(module, seed=0):
    """Random values for every parameter (bias tables and layer scales included), so parity is not
    helped by zero or constant initialisation."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            centre = 1.0 if ('norm' in name or 'lambda' in name or 'gamma' in name) else 0.0
            param.copy_(centre + 0.3 * noise)
    return module.eval()


def hf_beit(shared=False, classifier=False):
    config = BeitConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, use_relative_position_bias=not shared,
                        use_shared_relative_position_bias=shared, use_mean_pooling=True,
                        layer_scale_init_value=0.1, drop_path_rate=0.0, num_labels=3)
    model = BeitForImageClassification(config) if classifier else BeitModel(config)
    return randomise_(model)


def video_beit(max_frames=1, **overrides):
    return VideoBEiT(**{**SIZES, 'max_frames': max_frames, **overrides}).eval()


def images(batch=2, seed=1):
    return torch.randn(batch, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def assert_parity(ours, reference_tokens, reference_pooled, pixels):
    with torch.no_grad():
        out = ours(pixels[:, None])
    assert (out.tokens - reference_tokens).abs().max() <= 1e-5
    assert (out.pooled - reference_pooled).abs().max() <= 1e-5


@pytest.mark.parametrize('max_frames', [1, 4])
@pytest.mark.parametrize('shared', [False, True])
def test_hf_directory_parity(tmp_path, max_frames, shared):
    hf = hf_beit(shared=shared)
    hf.save_pretrained(tmp_path)
    ours = video_beit(max_frames)
    missing, unexpected = load_beit_weights(ours, str(tmp_path))
    assert (missing, unexpected) == ([], [])
    pixels = images()
    with torch.no_grad():
        ref = hf(pixel_values=pixels)
    assert ref.last_hidden_state.abs().max() > 1  # weights are far from their initial values
    assert_parity(ours, ref.last_hidden_state, ref.pooler_output, pixels)


def test_hf_classifier_directory_with_beit_prefix_and_bin_file(tmp_path):
    hf = hf_beit(classifier=True)
    hf.save_pretrained(tmp_path / 'hub')
    state = load_file(str(tmp_path / 'hub' / 'model.safetensors'))
    assert any(key.startswith('beit.encoder.layer.') for key in state) and 'classifier.weight' in state
    (tmp_path / 'bin').mkdir()
    torch.save(state, tmp_path / 'bin' / 'pytorch_model.bin')
    pixels = images()
    with torch.no_grad():
        ref = hf.beit(pixel_values=pixels)
    for source in (tmp_path / 'hub', tmp_path / 'bin'):
        ours = video_beit()
        assert load_beit_weights(ours, str(source)) == ([], [])
        assert_parity(ours, ref.last_hidden_state, ref.pooler_output, pixels)


def test_hf_in_memory_state_dict_parity():
    hf = hf_beit()
    assert any(key.startswith('layers.0.attention.q_proj') for key in hf.state_dict())
    ours = video_beit()
    assert load_beit_weights(ours, hf.state_dict()) == ([], [])
    pixels = images()
    with torch.no_grad():
        ref = hf(pixel_values=pixels)
    assert_parity(ours, ref.last_hidden_state, ref.pooler_output, pixels)


@pytest.mark.parametrize('wrapped', [False, True])
def test_timm_checkpoint_parity(tmp_path, wrapped):
    model = timm.create_model('beit_base_patch16_224', pretrained=False, img_size=16, patch_size=4,
                              embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=5)
    randomise_(model)
    state = model.state_dict()
    torch.save({'model': state} if wrapped else state, tmp_path / 'beit.pth')
    ours = video_beit(max_frames=4, norm_eps=1e-6)
    assert load_beit_weights(ours, str(tmp_path / 'beit.pth')) == ([], [])
    pixels = images()
    with torch.no_grad():
        tokens = model.forward_features(pixels)
        pooled = model.forward_head(tokens, pre_logits=True)
    assert_parity(ours, tokens, pooled, pixels)


def test_inflated_table_ignores_time_offset(tmp_path):
    hf = hf_beit()
    hf.save_pretrained(tmp_path)
    ours = video_beit(max_frames=4)
    load_beit_weights(ours, str(tmp_path))
    for ours_block, hf_layer in zip(ours.blocks, hf.layers):
        source = hf_layer.relative_position_bias.relative_position_bias_table
        table = ours_block.attn.relative_position_bias.table
        assert table.shape == (7 * NUM_SPATIAL + 3, 2)
        for dt in range(7):
            assert torch.equal(table[dt * NUM_SPATIAL:(dt + 1) * NUM_SPATIAL], source[:NUM_SPATIAL])
        assert torch.equal(table[-3:], source[-3:])


def test_inflated_model_on_repeated_frame_equals_2d_model_with_cls_key_rows_shifted(tmp_path):
    """T identical frames + a bias that ignores dt: every key of a patch appears T times with the same
    logit, so the softmax is the 2-D one with the [CLS] key's logit lowered by log T.  Hence every
    output token equals the 2-D BEiT's output when the two [CLS]-key rows (patch->cls, cls->cls) of
    every table are lowered by log T."""
    frames = 4
    hf = hf_beit()
    hf.save_pretrained(tmp_path)
    ours = video_beit(max_frames=4)
    load_beit_weights(ours, str(tmp_path))
    pixels = images()
    with torch.no_grad():
        out = ours(pixels[:, None].expand(-1, frames, -1, -1, -1).contiguous())
        unshifted = hf(pixel_values=pixels)
        for layer in hf.layers:
            layer.relative_position_bias.relative_position_bias_table[-2:] -= math.log(frames)
        ref = hf(pixel_values=pixels)
    patches = out.tokens[:, 1:].reshape(2, frames, 16, 16)
    assert (out.tokens[:, 0] - ref.last_hidden_state[:, 0]).abs().max() <= 1e-5
    for t in range(frames):
        assert (patches[:, t] - ref.last_hidden_state[:, 1:]).abs().max() <= 1e-5
    assert (out.pooled - ref.pooler_output).abs().max() <= 1e-5
    assert (out.tokens[:, 0] - unshifted.last_hidden_state[:, 0]).abs().max() > 1e-3


def test_own_state_dict_round_trip():
    source = video_beit(max_frames=2, token_order='hilbert')
    randomise_(source)
    target = video_beit(max_frames=2)
    assert load_beit_weights(target, source.state_dict()) == ([], [])
    video = torch.randn(1, 2, 3, 16, 16)
    with torch.no_grad():
        # same weights; mean pooling does not depend on the token order (up to summation order)
        torch.testing.assert_close(target(video).pooled, source(video).pooled, atol=1e-5, rtol=0)


def test_pretrained_is_loaded_by_init_weights(tmp_path):
    hf = hf_beit()
    hf.save_pretrained(tmp_path)
    model = BACKBONES.build(dict(type='VideoBEiT', **SIZES, max_frames=2, pretrained=str(tmp_path)))
    assert torch.count_nonzero(model.blocks[0].attn.relative_position_bias.table) == 0
    model.init_weights()
    expected = hf.layers[0].attention.k_proj.weight
    assert torch.equal(model.blocks[0].attn.qkv.weight[16:32], expected)
    assert torch.equal(model.blocks[1].gamma_2, hf.layers[1].lambda_2)


def test_missing_and_unexpected_keys_are_reported():
    hf = hf_beit()
    state = dict(hf.state_dict())
    del state['pooler.layernorm.bias']
    state['layernorm.weight'] = torch.ones(16)
    missing, unexpected = load_beit_weights(video_beit(), state)
    assert missing == ['pooler_norm.bias']
    assert unexpected == ['layernorm.weight']


def test_shape_mismatches_are_listed_key_by_key():
    # Shapes that no architecture setting explains (another architecture is refused before this, see
    # tests/models/test_architecture_check.py).
    state = dict(hf_beit().state_dict())
    state['pooler.layernorm.weight'] = torch.ones(5)
    state['layers.1.layernorm_after.bias'] = torch.ones(7)
    with pytest.raises(ValueError) as info:
        load_beit_weights(video_beit(), state)
    message = str(info.value)
    assert 'pooler_norm.weight: checkpoint (5,) vs model (16,)' in message
    assert 'blocks.1.norm2.bias: checkpoint (7,) vs model (16,)' in message


def test_3d_table_of_other_temporal_extent_is_resized_in_time():
    source = video_beit(max_frames=2)
    with torch.no_grad():
        for block in source.blocks:
            block.attn.relative_position_bias.table.normal_()
    target = video_beit(max_frames=4)
    assert load_beit_weights(target, source.state_dict()) == ([], [])
    for theirs, ours in zip(source.blocks, target.blocks):
        expected = resize_temporal_bias(theirs.attn.relative_position_bias.table.detach(), 2, 4)
        assert torch.equal(ours.attn.relative_position_bias.table.detach(), expected)


def test_inflate_function_on_its_own():
    table = torch.arange(2 * (NUM_SPATIAL + 3), dtype=torch.float32).reshape(NUM_SPATIAL + 3, 2)
    inflated = inflate_relative_position_table(table, max_frames=2, frame_grid=(4, 4))
    assert torch.equal(inflated, torch.cat([table[:-3], table[:-3], table[:-3], table[-3:]]))
    assert inflate_relative_position_table(table, 1, (4, 4)) is table
    assert inflate_relative_position_table(inflated, 2, (4, 4)) is inflated


def test_image_weights_inflate_to_tubelets_that_embed_a_still_clip_like_its_frame(tmp_path):
    """Loaded into 2-frame tubelets, the image patch filter is split over the two frames, so 4 still
    frames (2 tubelets) give what the 1-frame-per-token model gives on 2 still frames: the same tokens
    with the same keys twice over."""
    hf_beit().save_pretrained(tmp_path)
    frames, tubelets = video_beit(max_frames=2), video_beit(max_frames=4, tubelet_size=2)
    load_beit_weights(frames, str(tmp_path))
    missing, unexpected = load_beit_weights(tubelets, str(tmp_path))
    assert missing == [] and unexpected == []
    image_filter = frames.patch_embed.proj.weight
    assert torch.equal(tubelets.patch_embed.proj.weight, torch.cat([image_filter, image_filter], 1) / 2)
    still = images()[:, None]
    with torch.no_grad():
        ours = tubelets(still.expand(-1, 4, -1, -1, -1).contiguous())
        reference = frames(still.expand(-1, 2, -1, -1, -1).contiguous())
    assert (ours.tokens - reference.tokens).abs().max() <= 1e-5
    assert (ours.pooled - reference.pooled).abs().max() <= 1e-5


def test_unreadable_sources_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        load_beit_weights(video_beit(), str(tmp_path / 'nowhere.pth'))
    with pytest.raises(FileNotFoundError, match='model.safetensors or pytorch_model.bin'):
        load_beit_weights(video_beit(), str(tmp_path))
    (tmp_path / 'weights.npz').write_bytes(b'')
    with pytest.raises(ValueError, match=r'weights\.npz.*unsupported'):
        load_beit_weights(video_beit(), str(tmp_path / 'weights.npz'))
    torch.save({'model': {'blocks.0.x': torch.zeros(1)}, 'extra': object()}, tmp_path / 'unsafe.pth')
    with pytest.raises(ValueError, match=r'unsafe\.pth: refusing to load BEiT weights: .*object'):
        load_beit_weights(video_beit(), str(tmp_path / 'unsafe.pth'))
    with pytest.raises(ValueError, match='unrecognised BEiT weight layout'):
        load_beit_weights(video_beit(), {'text_encoder.weight': torch.zeros(1)})
