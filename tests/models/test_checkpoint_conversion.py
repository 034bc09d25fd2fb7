"""Reference SViTT checkpoints -> svitt_mm: a fake reference checkpoint is made from a tiny model's state
dict by the inverse name mapping (written here independently of the converter), converted with the tool,
and loaded with strict=True into a fresh model: equal tensors and equal outputs."""
import importlib.util
import os.path as osp
import re

import pytest
import torch
from mmengine.runner import load_checkpoint

from svitt_mm.models.backbones.temporal_bias_resize import resize_temporal_bias
from svitt_mm.models.checkpoint_conversion import convert_svitt_state_dict, source_num_frames
from svitt_mm.registry import MODELS
from svitt_mm.utils.errors import UserError
from svitt_mm.apis import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location('convert_tool', osp.join(ROOT, 'tools', 'convert_svitt_checkpoint.py'))
convert_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(convert_tool)

# ours -> reference (regex, replacement); the qkv weight is split separately.
TO_REFERENCE = [
    (r'^vision_encoder\.cls_token$', 'vision_encoder.embeddings.cls_token'),
    (r'^vision_encoder\.patch_embed\.proj\.', 'vision_encoder.embeddings.patch_embeddings.projection.'),
    (r'^vision_encoder\.blocks\.(\d+)\.attn\.q_bias$', r'vision_encoder.encoder.layer.\1.attention.attention.query.bias'),
    (r'^vision_encoder\.blocks\.(\d+)\.attn\.v_bias$', r'vision_encoder.encoder.layer.\1.attention.attention.value.bias'),
    (r'^vision_encoder\.blocks\.(\d+)\.attn\.relative_position_bias\.table$',
     r'vision_encoder.encoder.layer.\1.attention.attention.relative_position_bias.relative_position_bias_table'),
    (r'^vision_encoder\.blocks\.(\d+)\.attn\.proj\.', r'vision_encoder.encoder.layer.\1.attention.output.dense.'),
    (r'^vision_encoder\.blocks\.(\d+)\.mlp\.fc1\.', r'vision_encoder.encoder.layer.\1.intermediate.dense.'),
    (r'^vision_encoder\.blocks\.(\d+)\.mlp\.fc2\.', r'vision_encoder.encoder.layer.\1.output.dense.'),
    (r'^vision_encoder\.blocks\.(\d+)\.norm1\.', r'vision_encoder.encoder.layer.\1.layernorm_before.'),
    (r'^vision_encoder\.blocks\.(\d+)\.norm2\.', r'vision_encoder.encoder.layer.\1.layernorm_after.'),
    (r'^vision_encoder\.blocks\.(\d+)\.gamma_(\d)$', r'vision_encoder.encoder.layer.\1.lambda_\2'),
    (r'^vision_encoder\.pooler_norm\.', 'vision_encoder.pooler.layernorm.'),
    (r'^vision_norm\.', 'vision_layernorm.'),
    (r'^text_encoder\.embeddings\.word\.', 'text_encoder.PFXembeddings.word_embeddings.'),
    (r'^text_encoder\.embeddings\.position\.', 'text_encoder.PFXembeddings.position_embeddings.'),
    (r'^text_encoder\.embeddings\.token_type\.', 'text_encoder.PFXembeddings.token_type_embeddings.'),
    (r'^text_encoder\.embeddings\.norm\.', 'text_encoder.PFXembeddings.LayerNorm.'),
    (r'^text_encoder\.layers\.(\d+)\.self_attn\.(query|key|value)\.', r'text_encoder.PFXencoder.layer.\1.attention.self.\2.'),
    (r'^text_encoder\.layers\.(\d+)\.self_attn\.proj\.', r'text_encoder.PFXencoder.layer.\1.attention.output.dense.'),
    (r'^text_encoder\.layers\.(\d+)\.self_attn\.norm\.', r'text_encoder.PFXencoder.layer.\1.attention.output.LayerNorm.'),
    (r'^text_encoder\.layers\.(\d+)\.cross_attn\.(query|key|value)\.',
     r'text_encoder.PFXencoder.layer.\1.crossattention.self.\2.'),
    (r'^text_encoder\.layers\.(\d+)\.cross_attn\.proj\.', r'text_encoder.PFXencoder.layer.\1.crossattention.output.dense.'),
    (r'^text_encoder\.layers\.(\d+)\.cross_attn\.norm\.',
     r'text_encoder.PFXencoder.layer.\1.crossattention.output.LayerNorm.'),
    (r'^text_encoder\.layers\.(\d+)\.ffn\.fc1\.', r'text_encoder.PFXencoder.layer.\1.intermediate.dense.'),
    (r'^text_encoder\.layers\.(\d+)\.ffn\.fc2\.', r'text_encoder.PFXencoder.layer.\1.output.dense.'),
    (r'^text_encoder\.layers\.(\d+)\.ffn_norm\.', r'text_encoder.PFXencoder.layer.\1.output.LayerNorm.'),
    (r'^contrastive_head\.vision_proj\.', 'vision_proj.'),
    (r'^contrastive_head\.text_proj\.', 'text_proj.'),
    (r'^contrastive_head\.temperature$', 'temp'),
    (r'^matching_head\.classifier\.', 'itm_head.'),
]
QKV = re.compile(r'^vision_encoder\.blocks\.(\d+)\.attn\.qkv\.weight$')


def to_reference(state, text_prefix=''):
    """Our state dict in the reference layout (``text_prefix='bert.'``: the pretraining layout)."""
    reference = {}
    for key, value in state.items():
        match = QKV.match(key)
        if match:
            base = f'vision_encoder.encoder.layer.{match.group(1)}.attention.attention'
            for name, part in zip(('query', 'key', 'value'), value.chunk(3)):
                reference[f'{base}.{name}.weight'] = part.clone()
            # the persistent index buffer of the reference code, to be dropped
            reference[f'{base}.relative_position_bias.relative_position_index'] = torch.zeros(5, dtype=torch.long)
            continue
        for pattern, replacement in TO_REFERENCE:
            new, count = re.subn(pattern, replacement, key)
            if count:
                reference[new.replace('PFX', text_prefix)] = value.clone()
                break
        else:
            raise AssertionError(f'test mapping misses {key}')
    return reference


def tiny_model(max_frames=2):
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='VideoTextRetriever',
        vision_encoder=dict(type='VideoBEiT', img_size=32, patch_size=16, embed_dims=32, num_layers=2, num_heads=2,
                            max_frames=max_frames, attention=dict(type='DenseAttention'), drop_path_rate=0.0),
        text_encoder=dict(type='BertFusionEncoder', vocab_size=50, hidden_size=32, num_layers=2, num_heads=2,
                          intermediate_size=64, max_position_embeddings=16, fusion_layer=1, dropout=0.0),
        contrastive_head=dict(embed_dim=16)))
    with torch.no_grad():
        for param in model.parameters():  # every weight distinct, so that a mix-up shows
            param.normal_(0, 0.5)
        model.contrastive_head.temperature.fill_(0.05)
    return model.eval()


def outputs(model):
    torch.manual_seed(1)
    video = torch.randn(2, 1, 2, 3, 32, 32)
    ids, mask = torch.randint(1, 50, (2, 6)), torch.ones(2, 6, dtype=torch.long)
    with torch.no_grad():
        v = model.encode_video(video)
        t = model.encode_text(ids, mask)
        match = model.match_logits(v.tokens[:, 0], t.states, t.mask)
    return [v.tokens, v.embedding, t.states, t.embedding, match]


def test_round_trip_through_the_tool_loads_strictly_with_equal_outputs(tmp_path, capsys):
    source = tiny_model()
    reference = to_reference(source.state_dict())
    src, out = str(tmp_path / 'ckpt_best.pth'), str(tmp_path / 'converted.pth')
    torch.save({'model': reference, 'config': {'video_input': {'num_frames': 2}}}, src)
    convert_tool.main([src, out])
    printed = capsys.readouterr().out
    assert 'frames: 2 -> 2' in printed and 'dropped 2 keys' in printed and 'relative_position_index' in printed

    fresh = tiny_model()
    with torch.no_grad():
        for param in fresh.parameters():
            param.zero_()
    load_checkpoint(fresh, out, strict=True)  # what MMEngine's load_from does, but strict
    ours, theirs = source.state_dict(), fresh.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    for a, b in zip(outputs(source), outputs(fresh)):
        assert torch.equal(a, b)


def test_pretraining_layout_and_qa_decoder():
    source = tiny_model()
    downstream = convert_svitt_state_dict(to_reference(source.state_dict()))
    reference = to_reference(source.state_dict(), text_prefix='bert.')
    reference['text_encoder.cls.predictions.bias'] = torch.arange(50.0)
    reference['text_encoder.cls.predictions.transform.dense.weight'] = torch.ones(32, 32)
    reference['text_decoder.bert.embeddings.word_embeddings.weight'] = torch.zeros(50, 32)
    converted = convert_svitt_state_dict(reference)
    assert torch.equal(converted.state.pop('lm_head.bias'), torch.arange(50.0))
    assert torch.equal(converted.state.pop('lm_head.dense.weight'), torch.ones(32, 32))
    assert converted.state.keys() == downstream.state.keys() == source.state_dict().keys()
    assert 'text_decoder.bert.embeddings.word_embeddings.weight' in converted.dropped


def test_resize_to_another_frame_count():
    source = tiny_model(max_frames=2)
    reference = to_reference(source.state_dict())
    converted = convert_svitt_state_dict(reference, source_frames=2, num_frames=4)
    target = tiny_model(max_frames=4)
    target.load_state_dict(converted.state, strict=True)
    for ours, theirs in zip(target.vision_encoder.blocks, source.vision_encoder.blocks):
        expected = resize_temporal_bias(theirs.attn.relative_position_bias.table.detach(), 2, 4)
        assert torch.equal(ours.attn.relative_position_bias.table.detach(), expected)
    with pytest.raises(ValueError, match='does not say its frame count.*--source-frames'):
        convert_svitt_state_dict(reference, source_frames=None, num_frames=4)
    with pytest.raises(ValueError, match='is not a 3-frame table of a square patch grid'):
        convert_svitt_state_dict(reference, source_frames=3, num_frames=4)


def test_source_frames_from_config():
    assert source_num_frames({'config': {'video_input': {'num_frames': 8}}}) == 8
    assert source_num_frames({'config': None}) is None and source_num_frames({}) is None


def test_unsafe_or_malformed_sources_are_user_errors(tmp_path):
    torch.save({'model': {'temp': torch.tensor(0.07)}, 'config': object()}, tmp_path / 'omegaconf_like.pth')
    with pytest.raises(UserError, match=r'omegaconf_like\.pth: refusing to load SViTT checkpoint'):
        convert_tool.main([str(tmp_path / 'omegaconf_like.pth'), str(tmp_path / 'out.pth')])
    with pytest.raises(UserError, match='not found'):
        convert_tool.main([str(tmp_path / 'none.pth'), str(tmp_path / 'out.pth')])
    assert not (tmp_path / 'out.pth').exists()
