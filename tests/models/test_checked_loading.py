"""Weight loading never fails silently: another architecture is refused naming the setting (unless
strict=False, which loads what fits and warns in one table), HF config.json gives VideoBEiT's
architecture, shared + per-layer BEiT bias tables add up as in transformers, and MMEngine's per-parameter
init report is off."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from transformers import BeitConfig, BeitModel

from svitt_mm.models.architecture_check import ArchitectureMismatchError
from svitt_mm.models.backbones import VideoBEiT, load_beit_weights
from svitt_mm.models.checked_loading import load_state_dict_checked

SIZES = dict(img_size=16, patch_size=4, embed_dims=16, num_heads=2, mlp_ratio=2.0, drop_path_rate=0.0)


@pytest.fixture
def warnings_logged():
    """Messages logged at WARNING or above through MMEngine's current logger."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def hf_beit(tmp_path, layers=3, shared=False, per_layer=True):
    config = BeitConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=32, use_relative_position_bias=per_layer,
                        use_shared_relative_position_bias=shared, use_mean_pooling=True,
                        layer_scale_init_value=0.1)
    model = BeitModel(config).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            centre = 1.0 if ('norm' in name or 'lambda' in name) else 0.0
            param.copy_(centre + 0.3 * torch.randn(param.shape, generator=generator))
    model.save_pretrained(tmp_path)
    return model


def test_three_layer_beit_into_four_layer_model_is_refused_naming_num_layers(tmp_path):
    hf_beit(tmp_path, layers=3)
    (tmp_path / 'config.json').unlink()  # weights alone: the check reads the architecture from the keys
    model = VideoBEiT(**SIZES, num_layers=4, max_frames=1)
    with pytest.raises(ArchitectureMismatchError, match=r'VideoBEiT\.num_layers is 3 in the weights but 4 in '
                                                        r'the model .*strict=False'):
        load_beit_weights(model, str(tmp_path / 'model.safetensors'))
    built = VideoBEiT(**SIZES, num_layers=4, max_frames=1, pretrained=str(tmp_path / 'model.safetensors'))
    with pytest.raises(ArchitectureMismatchError, match='num_layers is 3'):
        built.init_weights()


def test_strict_false_loads_what_fits_and_warns_in_one_table(tmp_path, warnings_logged):
    hf = hf_beit(tmp_path, layers=3)
    model = VideoBEiT(**SIZES, num_layers=4, max_frames=1, strict=False,
                      pretrained=str(tmp_path / 'model.safetensors'))
    model.init_weights()
    assert torch.equal(model.blocks[2].gamma_1, hf.layers[2].lambda_1)
    tables = [r.getMessage() for r in warnings_logged if 'do not match the model exactly' in r.getMessage()]
    assert len(tables) == 1
    assert 'missing (left as initialised)' in tables[0] and 'blocks.3.' in tables[0]


def test_config_json_gives_the_architecture_and_contradictions_are_refused(tmp_path):
    hf_beit(tmp_path, layers=3)
    model = VideoBEiT(max_frames=1, pretrained=str(tmp_path))
    assert (len(model.blocks), model.embed_dims, model.patch_size, model.img_size) == (3, 16, 4, 16)
    assert model.blocks[0].mlp.fc1.out_features == 32
    model.init_weights()  # loads without a mismatch
    with pytest.raises(ValueError, match=r"num_layers=4 contradicts .*config\.json \(num_hidden_layers gives "
                                         r"num_layers=3\)"):
        VideoBEiT(max_frames=1, num_layers=4, pretrained=str(tmp_path))
    assert len(VideoBEiT(max_frames=1, num_layers=3, pretrained=str(tmp_path)).blocks) == 3  # agreeing: fine


def test_shared_and_per_layer_bias_tables_add_up_as_in_transformers(tmp_path):
    hf = hf_beit(tmp_path, layers=2, shared=True, per_layer=True)
    model = VideoBEiT(max_frames=1, drop_path_rate=0.0, pretrained=str(tmp_path))
    model.init_weights()
    model.eval()
    pixels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = hf(pixel_values=pixels)
        ours = model(pixels[:, None])
    assert (ours.tokens - reference.last_hidden_state).abs().max() <= 1e-5
    assert (ours.pooled - reference.pooler_output).abs().max() <= 1e-5


def test_whole_model_state_dict_another_architecture_refused_then_loaded_with_strict_false(warnings_logged):
    source = VideoBEiT(**SIZES, num_layers=3, max_frames=1).state_dict()
    model = VideoBEiT(**SIZES, num_layers=4, max_frames=1)
    with pytest.raises(ArchitectureMismatchError, match=r'ckpt\.pth was built for another architecture: '
                                                        r'model\.num_layers is 3 in the weights but 4'):
        load_state_dict_checked(model, source, 'ckpt.pth')
    source['pooler_norm.weight'] = torch.ones(5)
    source['extra.weight'] = torch.ones(1)
    report = load_state_dict_checked(model, {f'module.{k}': v for k, v in source.items()}, 'ckpt.pth',
                                     strict=False)
    assert sorted({key.split('.')[1] for key in report.missing if key.startswith('blocks.')}) == ['3']
    assert report.unexpected == ['extra.weight']
    assert report.mismatched == [('pooler_norm.weight', (5,), (16,))]
    assert torch.equal(model.blocks[0].attn.qkv.weight, source['blocks.0.attn.qkv.weight'])
    message = '\n'.join(r.getMessage() for r in warnings_logged)
    assert 'wrong shape (skipped)' in message and 'pooler_norm.weight (5,) vs model (16,)' in message


def test_mmengine_per_parameter_init_report_is_off():
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    # a fresh current logger: one that an earlier Runner left with a log file gets the report written to that
    # file's stream, where no logging handler sees it
    logger = MMLogger.get_instance(f'init_report_{id(records)}')
    logger.addHandler(handler)
    try:
        VideoBEiT(**SIZES, num_layers=1, max_frames=1).init_weights()
        assert not [r for r in records if 'torch.Size' in r.getMessage()]
        model = VideoBEiT(**SIZES, num_layers=1, max_frames=1)
        model.log_init_info = True  # on request, MMEngine's report is back
        model.init_weights()
        assert any('cls_token - torch.Size' in r.getMessage() for r in records)
    finally:
        logger.removeHandler(handler)
