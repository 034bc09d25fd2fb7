"""VideoBEiT's optional position embeddings (absolute spatial, learned temporal) and the random temporal start
of the relative position bias: shapes, initialisation, where they are added, independence of the token
order, loading from Hugging Face and timm BEiT weights (with a grid resize), strict-architecture checks."""
import pytest
import timm
import torch
import torch.nn.functional as F
from transformers import BeitConfig, BeitModel

from svitt_mm.models.architecture_check import ArchitectureMismatchError
from svitt_mm.models.backbones import VideoBEiT, load_beit_weights
from svitt_mm.models.backbones import beit_weights
from svitt_mm.models.backbones.beit_weights import resize_position_embedding
from svitt_mm.models.backbones.relative_position_bias import RelativePositionBias3D, num_relative_positions
from svitt_mm.utils.arg_checks import ArgumentError

from test_beit_weights import SIZES, assert_parity, images, randomise_

GRID = 4  # SIZES: 16-pixel frames, 4-pixel patches


def model(**overrides):
    torch.manual_seed(0)
    return VideoBEiT(**{**SIZES, 'max_frames': 4, **overrides}).eval()


def test_default_has_no_position_embeddings_and_switches_draw_after_the_default_init():
    plain, with_pos = model(), model(use_abs_pos_emb=True, use_temporal_emb=True)
    assert plain.pos_embed is None and plain.temporal_embed is None
    assert not any('pos_embed' in key or 'temporal_embed' in key for key in plain.state_dict())
    assert with_pos.pos_embed.shape == (1, 1 + GRID * GRID, 16)
    assert with_pos.temporal_embed.shape == (1, 4, 16)
    assert torch.count_nonzero(with_pos.pos_embed) == 0  # zero-initialised
    assert 0 < with_pos.temporal_embed.std() < 0.05  # small and random
    for key, value in plain.state_dict().items():  # the other parameters are drawn as without the switches
        assert torch.equal(value, with_pos.state_dict()[key]), key
    # a zero absolute embedding changes nothing
    video = torch.randn(2, 4, 3, 16, 16)
    only_pos = model(use_abs_pos_emb=True)
    with torch.no_grad():
        torch.testing.assert_close(only_pos(video).tokens, plain(video).tokens, atol=0, rtol=0)


def test_position_embedding_is_added_by_h_w_and_shared_across_frames():
    encoder = model(use_abs_pos_emb=True, tubelet_size=2)
    with torch.no_grad():
        encoder.pos_embed.normal_()
        added = encoder._embed_positions(torch.zeros(2, 2, GRID * GRID, 16))  # 2 tubelets
    added = added.reshape(2, 2, GRID * GRID, 16)
    for t in range(2):
        assert torch.equal(added[:, t], encoder.pos_embed[:, 1:].expand(2, -1, -1))


def test_cls_slot_goes_to_the_cls_token():
    encoder = model(use_abs_pos_emb=True)
    video = torch.randn(1, 4, 3, 16, 16)
    with torch.no_grad():
        before = encoder(video).tokens
        encoder.pos_embed[:, 0] = 1.0
        after = encoder(video).tokens
        shifted = model()
        shifted.load_state_dict({k: v for k, v in encoder.state_dict().items() if k != 'pos_embed'})
        shifted.cls_token += 1.0
        torch.testing.assert_close(after, shifted(video).tokens)
    assert (after - before).abs().max() > 1e-3


def test_temporal_embedding_is_added_per_frame_and_long_clips_are_refused():
    encoder = model(use_temporal_emb=True)
    added = encoder._embed_positions(torch.zeros(1, 3, GRID * GRID, 16)).reshape(1, 3, GRID * GRID, 16)
    for t in range(3):
        assert torch.equal(added[0, t], encoder.temporal_embed[0, t].expand(GRID * GRID, -1))
    with pytest.raises(ValueError, match='temporal embedding for 4 frames'):
        encoder(torch.randn(1, 5, 3, 16, 16))


@pytest.mark.parametrize('switch', ['use_abs_pos_emb', 'use_temporal_emb'])
def test_embeddings_follow_the_original_positions_for_every_token_order(switch):
    """Same weights, raster vs Hilbert order, dense attention: the [CLS] output is the same, which fails if
    an embedding were added after the reordering."""
    raster = model(**{switch: True})
    randomise_(raster)
    hilbert = model(**{switch: True}, token_order='hilbert')
    hilbert.load_state_dict(raster.state_dict())
    video = torch.randn(2, 4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(hilbert(video).tokens[:, 0], raster(video).tokens[:, 0], atol=1e-5, rtol=0)


def hf_beit_with_position_embeddings():
    config = BeitConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, use_absolute_position_embeddings=True,
                        use_relative_position_bias=True, use_mean_pooling=True, layer_scale_init_value=0.1)
    return randomise_(BeitModel(config))


def test_hf_weights_with_position_embeddings_load_with_parity(tmp_path):
    hf = hf_beit_with_position_embeddings()
    hf.save_pretrained(tmp_path)
    ours = model(use_abs_pos_emb=True, max_frames=1)
    assert load_beit_weights(ours, str(tmp_path)) == ([], [])
    pixels = images()
    with torch.no_grad():
        ref = hf(pixel_values=pixels)
    assert_parity(ours, ref.last_hidden_state, ref.pooler_output, pixels)


def test_timm_weights_with_position_embeddings_load_with_parity():
    timm_model = timm.create_model('beit_base_patch16_224', pretrained=False, img_size=16, patch_size=4,
                                   embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=0,
                                   use_abs_pos_emb=True)
    randomise_(timm_model)
    ours = model(use_abs_pos_emb=True, max_frames=1, norm_eps=1e-6)
    assert load_beit_weights(ours, timm_model.state_dict()) == ([], [])
    pixels = images()
    with torch.no_grad():
        tokens = timm_model.forward_features(pixels)
        pooled = timm_model.forward_head(tokens, pre_logits=True)
    assert_parity(ours, tokens, pooled, pixels)


def test_other_grid_is_resized_bicubically(monkeypatch):
    logged = []
    monkeypatch.setattr(beit_weights, 'print_log', lambda message, **kwargs: logged.append(message))
    source = model(use_abs_pos_emb=True)
    randomise_(source)
    state = source.state_dict()
    small = torch.randn(1, 1 + 2 * 2, 16)  # a 2x2 grid
    state['pos_embed'] = small
    target = model(use_abs_pos_emb=True)
    assert load_beit_weights(target, state) == ([], [])
    expected = F.interpolate(small[:, 1:].reshape(1, 2, 2, 16).permute(0, 3, 1, 2), size=(GRID, GRID),
                             mode='bicubic', align_corners=False).permute(0, 2, 3, 1).reshape(1, -1, 16)
    assert torch.equal(target.pos_embed[:, :1], small[:, :1])
    torch.testing.assert_close(target.pos_embed[:, 1:], expected)
    assert any('absolute position embedding resized from (1, 5, 16) to (1, 17, 16)' in line for line in logged)
    same = torch.randn(1, 17, 16)
    assert resize_position_embedding(same, (GRID, GRID)) is same


def test_strict_loading_compares_the_switches():
    with_pos = model(use_abs_pos_emb=True, use_temporal_emb=True)
    plain = model()
    with pytest.raises(ArchitectureMismatchError, match='use_abs_pos_emb is True in the weights but False'):
        load_beit_weights(plain, with_pos.state_dict())
    without_abs = {k: v for k, v in with_pos.state_dict().items() if k != 'pos_embed'}
    with pytest.raises(ArchitectureMismatchError, match='use_temporal_emb is True in the weights but False'):
        load_beit_weights(model(use_abs_pos_emb=True), without_abs)
    # weights without them load into a model with them: the embeddings keep their start
    target = model(use_abs_pos_emb=True, use_temporal_emb=True)
    start = target.temporal_embed.clone()
    missing, _ = load_beit_weights(target, plain.state_dict())
    assert missing == ['pos_embed', 'temporal_embed'] and torch.equal(target.temporal_embed, start)
    # strict=False: the unexpected embedding is reported and skipped
    assert load_beit_weights(model(), with_pos.state_dict(), strict=False)[1] == ['pos_embed', 'temporal_embed']


def test_temporal_init_std_breaks_the_time_symmetry_of_the_tables():
    grid, frames = (3, 3), 3
    stride = num_relative_positions(1, grid)
    zero = RelativePositionBias3D(2, frames, grid)
    assert torch.count_nonzero(zero.table) == 0  # the default stays zero
    torch.manual_seed(0)
    table = RelativePositionBias3D(2, frames, grid, temporal_init_std=0.05).table.detach()
    slices = table[:-3].reshape(2 * frames - 1, stride, 2)  # dt = -(T-1) .. T-1
    centre = frames - 1
    assert torch.count_nonzero(slices[centre]) == 0 and torch.count_nonzero(table[-3:]) == 0
    for dt in range(1, frames):
        assert not torch.allclose(slices[centre + dt], slices[centre - dt])
        assert 0.02 < slices[centre + dt].std() < 0.1
    with pytest.raises(ArgumentError, match='temporal_init_std must be >= 0'):
        RelativePositionBias3D(2, frames, grid, temporal_init_std=-1.0)


def test_video_beit_temporal_init_std_reaches_every_layer():
    plain, tilted = model(), model(temporal_init_std=0.02)
    for block in plain.blocks:
        assert torch.count_nonzero(block.attn.relative_position_bias.table) == 0
    tables = [block.attn.relative_position_bias.table for block in tilted.blocks]
    assert all(torch.count_nonzero(table) > 0 for table in tables) and not torch.equal(*tables)
    with pytest.raises(ArgumentError, match='temporal_init_std'):
        model(temporal_init_std=-0.1)
