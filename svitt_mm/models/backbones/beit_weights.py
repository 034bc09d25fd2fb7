"""Load pretrained 2-D BEiT weights (Hugging Face or timm layout) into a :class:`VideoBEiT`.

Key layouts understood (detected from the keys, an optional ``beit.`` prefix is stripped):

* ``hf``: Hugging Face hub checkpoints (``microsoft/beit-base-patch16-224-pt22k-ft22k``;
  ``encoder.layer.{i}.attention.attention.query.weight`` ...), as ``save_pretrained`` writes them;
* ``hf_modules``: the module names of ``transformers>=5`` ``BeitModel.state_dict()``
  (``layers.{i}.attention.q_proj.weight`` ...);
* ``timm``: timm's ``Beit`` (``blocks.{i}.attn.qkv.weight`` ...), which is also VideoBEiT's own layout
  up to the names of the bias tables and of the pooler norm, so VideoBEiT state dicts load too.

Separate q/k/v projections are concatenated into the fused ``qkv`` weight, ``relative_position_index``
buffers and classifier heads are dropped, a shared bias table (``use_shared_relative_position_bias``) is
added to every layer's own table (or copied to every layer that has none; Hugging Face adds both biases
when a checkpoint has both), every 2-D relative position bias table is inflated to 3-D (see
:func:`inflate_relative_position_table`), and an image patch projection is inflated to the model's
tubelets (:func:`inflate_patch_embedding`). An absolute position embedding (HF
``embeddings.position_embeddings``, timm ``pos_embed``, ``[1, 1+H*W, C]`` with a [CLS] slot) goes to
VideoBEiT's ``pos_embed`` (``use_abs_pos_emb=True``), resized bicubically when its grid differs from the
model's (:func:`resize_position_embedding`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor

from svitt_mm.utils.load_report import KeyReport, log_key_report
from svitt_mm.utils.safe_load import check_shapes, load_weights_file
from svitt_mm.utils.weight_files import find_weight_file

from ..architecture_check import check_architecture
from .temporal_bias_resize import resize_temporal_bias, table_frames

if TYPE_CHECKING:
    from .video_beit import VideoBEiT

StateDict = Dict[str, Tensor]
Rules = Sequence[Tuple[str, str]]

# Name of a table shared by all layers, before it is copied to each layer.
SHARED_TABLE = 'shared_relative_position_bias_table'
PATCH_PROJECTION = 'patch_embed.proj.weight'
POSITION_EMBEDDING = 'pos_embed'
TABLE_KEY = re.compile(r'^blocks\.\d+\.attn\.relative_position_bias\.table$')
# Separate q/k/v weights are renamed to ``blocks.{i}.attn.qkv.weight.{q,k,v}``, then fused.
QKV_PART = re.compile(r'^(blocks\.\d+\.attn\.qkv\.weight)\.([qkv])$')
DROPPED = re.compile(r'(relative_position_index$|^classifier\.|^head\.)')
WRAPPER_KEYS = ('state_dict', 'model', 'module')
STRIPPED_PREFIX = 'beit.'

_HF_RULES: Rules = (
    (r'^embeddings\.cls_token$', 'cls_token'),
    (r'^embeddings\.position_embeddings$', POSITION_EMBEDDING),
    (r'^embeddings\.patch_embeddings\.projection\.', 'patch_embed.proj.'),
    (r'^encoder\.layer\.(\d+)\.attention\.attention\.query\.bias$', r'blocks.\1.attn.q_bias'),
    (r'^encoder\.layer\.(\d+)\.attention\.attention\.value\.bias$', r'blocks.\1.attn.v_bias'),
    (r'^encoder\.layer\.(\d+)\.attention\.attention\.(q)uery\.weight$', r'blocks.\1.attn.qkv.weight.\2'),
    (r'^encoder\.layer\.(\d+)\.attention\.attention\.(k)ey\.weight$', r'blocks.\1.attn.qkv.weight.\2'),
    (r'^encoder\.layer\.(\d+)\.attention\.attention\.(v)alue\.weight$', r'blocks.\1.attn.qkv.weight.\2'),
    (r'^encoder\.layer\.(\d+)\.attention\.attention\.relative_position_bias\.relative_position_bias_table$',
     r'blocks.\1.attn.relative_position_bias.table'),
    (r'^encoder\.layer\.(\d+)\.attention\.output\.dense\.', r'blocks.\1.attn.proj.'),
    (r'^encoder\.layer\.(\d+)\.intermediate\.dense\.', r'blocks.\1.mlp.fc1.'),
    (r'^encoder\.layer\.(\d+)\.output\.dense\.', r'blocks.\1.mlp.fc2.'),
    (r'^encoder\.layer\.(\d+)\.layernorm_before\.', r'blocks.\1.norm1.'),
    (r'^encoder\.layer\.(\d+)\.layernorm_after\.', r'blocks.\1.norm2.'),
    (r'^encoder\.layer\.(\d+)\.lambda_([12])$', r'blocks.\1.gamma_\2'),
    (r'^encoder\.relative_position_bias\.relative_position_bias_table$', SHARED_TABLE),
    (r'^pooler\.layernorm\.', 'pooler_norm.'),
)

_HF_MODULE_RULES: Rules = (
    (r'^embeddings\.cls_token$', 'cls_token'),
    (r'^embeddings\.position_embeddings$', POSITION_EMBEDDING),
    (r'^embeddings\.patch_embeddings\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.attention\.q_proj\.bias$', r'blocks.\1.attn.q_bias'),
    (r'^layers\.(\d+)\.attention\.v_proj\.bias$', r'blocks.\1.attn.v_bias'),
    (r'^layers\.(\d+)\.attention\.([qkv])_proj\.weight$', r'blocks.\1.attn.qkv.weight.\2'),
    (r'^layers\.(\d+)\.attention\.o_proj\.', r'blocks.\1.attn.proj.'),
    (r'^layers\.(\d+)\.relative_position_bias\.relative_position_bias_table$',
     r'blocks.\1.attn.relative_position_bias.table'),
    (r'^layers\.(\d+)\.mlp\.', r'blocks.\1.mlp.'),
    (r'^layers\.(\d+)\.layernorm_before\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.layernorm_after\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.lambda_([12])$', r'blocks.\1.gamma_\2'),
    (r'^shared_position_bias\.relative_position_bias_table$', SHARED_TABLE),
    (r'^pooler\.layernorm\.', 'pooler_norm.'),
)

_TIMM_RULES: Rules = (
    (r'^blocks\.(\d+)\.attn\.relative_position_bias_table$', r'blocks.\1.attn.relative_position_bias.table'),
    (r'^rel_pos_bias\.relative_position_bias_table$', SHARED_TABLE),
    (r'^fc_norm\.', 'pooler_norm.'),
)

# layout name -> (a key pattern only that layout has, its renaming rules)
LAYOUTS: Dict[str, Tuple[re.Pattern, Rules]] = {
    'hf': (re.compile(r'^encoder\.layer\.\d+\.'), _HF_RULES),
    'hf_modules': (re.compile(r'^layers\.\d+\.attention\.[qkvo]_proj\.'), _HF_MODULE_RULES),
    'timm': (re.compile(r'^blocks\.\d+\.'), _TIMM_RULES),
}


def read_state_dict(source: Union[str, Path, Mapping[str, Tensor]]) -> StateDict:
    """Tensors of ``source``: a state dict, a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` file, or a
    Hugging Face model directory (``model.safetensors`` or ``pytorch_model.bin``).  Files are read safely
    (:func:`~svitt_mm.utils.safe_load.load_weights_file`: a pickle that would run code is refused); a
    ``state_dict`` / ``model`` / ``module`` wrapper is unpacked."""
    if isinstance(source, Mapping):
        state = dict(source)
    else:
        state = load_weights_file(str(find_weight_file(str(source), 'BEiT weights')), 'BEiT weights')
    for wrapper in WRAPPER_KEYS:
        if wrapper in state and isinstance(state[wrapper], Mapping):
            state = dict(state[wrapper])
    return state


def detect_layout(state: Mapping[str, Tensor]) -> str:
    """Name of the key layout of ``state`` (a key of :data:`LAYOUTS`; ``beit.`` already stripped)."""
    for name, (marker, _) in LAYOUTS.items():
        if any(marker.match(key) for key in state):
            return name
    raise ValueError(f'unrecognised BEiT weight layout (expected Hugging Face or timm BEiT keys); first '
                     f'keys: {sorted(state)[:8]}')


def rename_keys(state: Mapping[str, Tensor], rules: Rules) -> StateDict:
    """Apply the first matching ``(pattern, replacement)`` rule to every key; other keys are kept."""
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                key = new_key
                break
        renamed[key] = value
    return renamed


def fuse_qkv(state: StateDict) -> StateDict:
    """Concatenate ``blocks.{i}.attn.qkv.weight.{q,k,v}`` into ``blocks.{i}.attn.qkv.weight``."""
    parts: Dict[str, Dict[str, Tensor]] = {}
    fused = {}
    for key, value in state.items():
        match = QKV_PART.match(key)
        if match:
            parts.setdefault(match.group(1), {})[match.group(2)] = value
        else:
            fused[key] = value
    for key, qkv in parts.items():
        absent = [name for name in 'qkv' if name not in qkv]
        if absent:
            raise ValueError(f'{key}: checkpoint lacks the {"/".join(absent)} projection weight(s)')
        fused[key] = torch.cat([qkv['q'], qkv['k'], qkv['v']], dim=0)
    return fused


def inflate_relative_position_table(table: Tensor, max_frames: int, frame_grid: Tuple[int, int],
                                    key: str = 'relative position bias table') -> Tensor:
    """Turn a 2-D BEiT table ``[(2Hp-1)(2Wp-1) + 3, H]`` into a 3-D one ``[(2T-1)(2Hp-1)(2Wp-1) + 3, H]``.

    The spatial rows are copied to every temporal offset (time outermost), so the inflated bias does not
    depend on the temporal offset; the 3 [CLS] rows are kept.  A 3-D table of another temporal extent
    (a checkpoint of another frame count) is resized by symmetric linear interpolation in time; both are
    :func:`~.temporal_bias_resize.resize_temporal_bias` (a 2-D table is a 1-frame one).  A table of the
    target size is returned unchanged; one of any other size is returned unchanged too and reported by
    the caller's shape check.
    """
    source = table_frames(table.shape[0], frame_grid)
    if source is not None and source != max_frames:
        return resize_temporal_bias(table, source, max_frames)
    return table


def inflate_patch_embedding(weight: Tensor, tubelet_size: int) -> Tensor:
    """Turn an image patch projection ``[C', C, p, p]`` into a tubelet one ``[C', s*C, p, p]``
    (``s = tubelet_size``): each frame of the tubelet gets the image filter divided by ``s``, so a clip
    that does not change embeds as its frame does in the image model.  Any other shape is returned
    unchanged (a tubelet checkpoint, or one the caller's shape check reports)."""
    if tubelet_size > 1 and weight.dim() == 4:
        return weight.repeat(1, tubelet_size, 1, 1) / tubelet_size
    return weight


def resize_position_embedding(embedding: Tensor, grid: Tuple[int, int]) -> Tensor:
    """Resize an absolute position embedding ``[1, 1+S*S, C]`` (a square ``S x S`` grid after the [CLS]
    slot) to ``grid`` ``(Hp, Wp)`` by bicubic interpolation of the patch slots; the [CLS] slot is kept.
    An embedding of the target size, or one that is not ``[1, 1+S*S, C]``, is returned unchanged (the
    caller's shape check reports the latter)."""
    if embedding.dim() != 3 or embedding.shape[0] != 1 or embedding.shape[1] == 1 + grid[0] * grid[1]:
        return embedding
    side = round((embedding.shape[1] - 1) ** 0.5)
    if side * side != embedding.shape[1] - 1:
        return embedding
    patches = embedding[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    patches = F.interpolate(patches, size=tuple(grid), mode='bicubic', align_corners=False)
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1).to(embedding.dtype)
    return torch.cat([embedding[:, :1], patches], dim=1)


def load_beit_weights(model: 'VideoBEiT', source: Union[str, Path, Mapping[str, Tensor]],
                      strict: bool = True) -> Tuple[List[str], List[str]]:
    """Load BEiT weights from ``source`` (see :func:`read_state_dict`) into ``model``.

    With ``strict``, weights built for another architecture are refused
    (:class:`~svitt_mm.models.architecture_check.ArchitectureMismatchError` names the first setting that
    differs, e.g. ``num_layers``) and any other key whose shape does not match raises ``ValueError``
    (every such key listed); with ``strict=False`` the keys that fit are loaded and the others skipped.
    Keys that did not match are logged in one WARNING table.

    Returns ``(missing, unexpected)``: model keys the checkpoint did not provide, and checkpoint keys
    (after renaming) the model does not have.
    """
    name = str(source) if isinstance(source, (str, Path)) else 'the given BEiT state dict'
    state = read_state_dict(source)
    state = {key[len(STRIPPED_PREFIX):] if key.startswith(STRIPPED_PREFIX) else key: value
             for key, value in state.items() if not DROPPED.search(key)}
    state = fuse_qkv(rename_keys(state, LAYOUTS[detect_layout(state)][1]))
    shared = state.pop(SHARED_TABLE, None)
    if shared is not None:
        for layer in range(len(model.blocks)):
            key = f'blocks.{layer}.attn.relative_position_bias.table'
            own_table = state.get(key)
            both = own_table is not None and own_table.shape == shared.shape
            state[key] = own_table + shared if both else state.get(key, shared)
    state = {key: inflate_relative_position_table(value, model.max_tubelets, model.frame_grid, key)
             if TABLE_KEY.match(key) else value for key, value in state.items()}
    position = state.get(POSITION_EMBEDDING)
    if position is not None and getattr(model, 'pos_embed', None) is not None:
        state[POSITION_EMBEDDING] = resize_position_embedding(position, model.frame_grid)
        if state[POSITION_EMBEDDING].shape != position.shape:
            print_log(f'{POSITION_EMBEDDING}: absolute position embedding resized from {tuple(position.shape)} '
                      f'to {tuple(state[POSITION_EMBEDDING].shape)} (a {model.frame_grid[0]}x'
                      f'{model.frame_grid[1]} patch grid, bicubic interpolation)', logger='current')
    own_projection = model.patch_embed.proj.weight
    projection = state.get(PATCH_PROJECTION)
    if projection is not None and projection.shape[1] * model.tubelet_size == own_projection.shape[1]:
        state[PATCH_PROJECTION] = inflate_patch_embedding(projection, model.tubelet_size)

    owner = type(model).__name__
    if strict:
        check_architecture(state, model, name, owner)
    own = model.state_dict()
    shapes = [(key, tuple(value.shape), tuple(own[key].shape)) for key, value in state.items() if key in own]
    if strict:
        check_shapes(shapes, owner)
    report = KeyReport(missing=sorted(key for key in own if key not in state),
                       unexpected=sorted(key for key in state if key not in own),
                       mismatched=[entry for entry in shapes if entry[1] != entry[2]])
    skipped = {key for key, _, _ in report.mismatched}
    model.load_state_dict({key: value for key, value in state.items() if key in own and key not in skipped},
                          strict=False)
    log_key_report(report, owner, name)
    return report.missing, report.unexpected
