"""Load Hugging Face BERT weights (and SViTT's cross-attention weights) into :class:`BertFusionEncoder`.

Sources are a local HF BERT folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``),
a hub id (resolved through the local cache, or downloaded when online), a ``package://`` spec (see
:func:`svitt_mm.utils.resources.resolve_path`) or an already-loaded state dict.

Name mapping (HF -> ours; an optional leading ``bert.`` is accepted)::

    embeddings.word_embeddings / position_embeddings / token_type_embeddings / LayerNorm
        -> embeddings.word / position / token_type / norm
    encoder.layer.{i}.attention.self.{query,key,value}      -> layers.{i}.self_attn.{query,key,value}
    encoder.layer.{i}.attention.output.{dense,LayerNorm}     -> layers.{i}.self_attn.{proj,norm}
    encoder.layer.{i}.crossattention.self.{query,key,value}  -> layers.{i}.cross_attn.{query,key,value}
    encoder.layer.{i}.crossattention.output.{dense,LayerNorm} -> layers.{i}.cross_attn.{proj,norm}
    encoder.layer.{i}.intermediate.dense                     -> layers.{i}.ffn.fc1
    encoder.layer.{i}.output.{dense,LayerNorm}               -> layers.{i}.{ffn.fc2,ffn_norm}

The masked-LM head (``cls.predictions.*``) maps onto ``LanguageModelHead`` (:func:`lm_head_key_to_ours`,
:func:`load_lm_head_weights`)::

    cls.predictions.transform.{dense,LayerNorm} -> {dense,norm}
    cls.predictions.bias (= decoder.bias)        -> bias
    cls.predictions.decoder.weight (tied)        -> decoder.weight
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from svitt_mm.utils.load_report import KeyReport, log_key_report
from svitt_mm.utils.resources import resolve_path
from svitt_mm.utils.safe_load import check_shapes, load_weights_file
from svitt_mm.utils.weight_files import find_weight_file

from ..architecture_check import check_architecture

WeightSource = Union[str, os.PathLike, Mapping[str, Tensor]]

# Non-trainable buffers some HF checkpoints carry; our modules compute them on the fly.
IGNORED_KEYS = frozenset({'embeddings.position_ids'})

_EMBEDDING_NAMES = {
    'embeddings.word_embeddings': 'embeddings.word',
    'embeddings.position_embeddings': 'embeddings.position',
    'embeddings.token_type_embeddings': 'embeddings.token_type',
    'embeddings.LayerNorm': 'embeddings.norm',
}
_LAYER_PART_NAMES = {
    'attention.self.query': 'self_attn.query',
    'attention.self.key': 'self_attn.key',
    'attention.self.value': 'self_attn.value',
    'attention.output.dense': 'self_attn.proj',
    'attention.output.LayerNorm': 'self_attn.norm',
    'crossattention.self.query': 'cross_attn.query',
    'crossattention.self.key': 'cross_attn.key',
    'crossattention.self.value': 'cross_attn.value',
    'crossattention.output.dense': 'cross_attn.proj',
    'crossattention.output.LayerNorm': 'cross_attn.norm',
    'intermediate.dense': 'ffn.fc1',
    'output.dense': 'ffn.fc2',
    'output.LayerNorm': 'ffn_norm',
}
# Old TF-converted checkpoints name LayerNorm parameters gamma/beta.
_PARAM_NAMES = {'weight': 'weight', 'bias': 'bias', 'gamma': 'weight', 'beta': 'bias'}
_LAYER_KEY = re.compile(r'encoder\.layer\.(\d+)\.(.+)')

# HF BertConfig attribute -> BertFusionEncoder argument.
_CONFIG_FIELDS = {
    'vocab_size': 'vocab_size',
    'hidden_size': 'hidden_size',
    'num_hidden_layers': 'num_layers',
    'num_attention_heads': 'num_heads',
    'intermediate_size': 'intermediate_size',
    'max_position_embeddings': 'max_position_embeddings',
    'type_vocab_size': 'type_vocab_size',
    'layer_norm_eps': 'layer_norm_eps',
}


def bert_key_to_ours(key: str) -> Optional[str]:
    """Our parameter name for an HF BERT state-dict key (``bert.`` prefix optional); ``None`` if unknown."""
    key = key.removeprefix('bert.')
    module, _, param = key.rpartition('.')
    if param not in _PARAM_NAMES:
        return None
    param = _PARAM_NAMES[param]
    if module in _EMBEDDING_NAMES:
        return f'{_EMBEDDING_NAMES[module]}.{param}'
    match = _LAYER_KEY.fullmatch(module)
    if match is None or match.group(2) not in _LAYER_PART_NAMES:
        return None
    return f'layers.{match.group(1)}.{_LAYER_PART_NAMES[match.group(2)]}.{param}'


def _missing_weights_error(spec: str, cause: BaseException) -> OSError:
    return OSError(
        f'Pretrained BERT {spec!r} was not found offline ({type(cause).__name__}: {cause}). Download '
        f'the model folder (config.json + model.safetensors) on a machine with network access, e.g. '
        f'`hf download bert-base-uncased --local-dir <folder>` or '
        f'BertModel.from_pretrained(...).save_pretrained(<folder>), copy it here and set the '
        f'config key `model.text_encoder.pretrained` to that local folder. Hub ids work only when online '
        f'or already in the Hugging Face cache.')


def read_bert_config(pretrained: str) -> Dict[str, Any]:
    """Architecture arguments of :class:`BertFusionEncoder` read from an HF BERT config.

    ``pretrained``: local folder, hub id or ``package://`` spec. Returns ``{'vocab_size', 'hidden_size',
    'num_layers', 'num_heads', 'intermediate_size', 'max_position_embeddings', 'type_vocab_size',
    'layer_norm_eps'}``. Raises ``OSError`` (saying what to download and which config key to set) when
    the config cannot be found, ``ValueError`` when it is not a BERT with absolute positions and GELU.
    """
    # transformers takes seconds to import; only pretrained encoders need it.
    from transformers import AutoConfig

    source = resolve_path(pretrained)
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise _missing_weights_error(pretrained, error) from error
    position_type = getattr(config, 'position_embedding_type', 'absolute')
    if (config.model_type != 'bert' or config.hidden_act != 'gelu'
            or position_type != 'absolute'):
        raise ValueError(
            f'{pretrained!r}: expected a BERT config with absolute positions and GELU, got '
            f'model_type={config.model_type!r}, hidden_act={config.hidden_act!r}, '
            f'position_embedding_type={position_type!r}')
    return {ours: getattr(config, theirs) for theirs, ours in _CONFIG_FIELDS.items()}


def read_bert_state_dict(pretrained: str) -> Dict[str, Tensor]:
    """All tensors of the checkpoint named by ``pretrained`` (folder, hub id or ``package://`` spec), read
    safely (:func:`~svitt_mm.utils.safe_load.load_weights_file`: a pickle that would run code is refused)."""
    try:
        path = find_weight_file(pretrained, 'BERT weights', hub=True)
    except FileNotFoundError as error:
        raise _missing_weights_error(pretrained, error) from error
    return load_weights_file(str(path), 'BERT weights')


def load_bert_weights(encoder: nn.Module, source: WeightSource, prefix: str = '',
                      key_map: Callable[[str], Optional[str]] = bert_key_to_ours, strict: bool = True
                      ) -> Tuple[List[str], List[str]]:
    """Copy HF-named BERT weights into ``encoder`` (a :class:`BertFusionEncoder`).

    ``source``: a folder / hub id / ``package://`` spec, or a state dict. ``prefix``: only keys starting
    with it are used, with it removed (e.g. ``'text_encoder.'`` for a SViTT checkpoint's ``model`` dict);
    a further ``bert.`` prefix is optional. Returns ``(missing, unexpected)``: our parameter names that
    received no weight (e.g. fresh cross-attention), and source keys with no counterpart here (e.g.
    ``pooler.*``, ``cls.*``). ``key_map`` turns an HF key into our name (``None`` = no counterpart),
    e.g. :func:`lm_head_key_to_ours` to load a masked-LM head.

    With ``strict``, weights built for another architecture are refused
    (:class:`~svitt_mm.models.architecture_check.ArchitectureMismatchError` names the first setting that
    differs, e.g. ``num_layers``) and any other shape mismatch raises ``ValueError`` listing every such
    key, before copying anything; with ``strict=False`` the keys that fit are loaded and the others
    skipped. Keys that did not match are logged in one WARNING table.
    """
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else 'the given BERT state dict'
    state = read_bert_state_dict(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else source
    own = encoder.state_dict()
    mapped: Dict[str, Tensor] = {}
    unexpected: List[str] = []
    checked: List[Tuple[str, torch.Size, torch.Size]] = []
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        hf_key = key[len(prefix):]
        if hf_key.removeprefix('bert.') in IGNORED_KEYS:
            continue
        ours = key_map(hf_key)
        if ours is None or ours not in own:
            unexpected.append(key)
        else:
            checked.append((f'{key} -> {ours}', tuple(value.shape), tuple(own[ours].shape)))
            mapped[ours] = value
    owner = type(encoder).__name__
    if strict:
        check_architecture(mapped, encoder, name, owner)
        check_shapes(checked, owner)
    mismatched = [(key, tuple(value.shape), tuple(own[key].shape)) for key, value in mapped.items()
                  if value.shape != own[key].shape]
    report = KeyReport(missing=[key for key in own if key not in mapped], unexpected=unexpected,
                       mismatched=mismatched)
    for key, _, _ in mismatched:
        del mapped[key]
    encoder.load_state_dict(mapped, strict=False)
    log_key_report(report, owner, name)
    return report.missing, report.unexpected


# --- BERT masked-language-model head (``cls.predictions.*``) -> LanguageModelHead ------------------
# The vocabulary projection ``decoder.weight`` is the word-embedding table in HF BERT (tied); it is
# usually absent from saved checkpoints, and ``decoder.bias`` is the same tensor as ``bias``.
_LM_HEAD_NAMES = {
    'cls.predictions.transform.dense': 'dense',
    'cls.predictions.transform.LayerNorm': 'norm',
    'cls.predictions.decoder': 'decoder',
}


def lm_head_key_to_ours(key: str) -> Optional[str]:
    """Our :class:`~svitt_mm.models.text.LanguageModelHead` parameter name for an HF BERT-MLM head
    key (``cls.predictions.*``); ``None`` for any other key.

    ``cls.predictions.transform.dense.weight -> dense.weight``, ``...transform.LayerNorm.gamma ->
    norm.weight``, ``cls.predictions.bias`` and ``cls.predictions.decoder.bias -> bias``,
    ``cls.predictions.decoder.weight -> decoder.weight``.
    """
    if key in ('cls.predictions.bias', 'cls.predictions.decoder.bias'):
        return 'bias'
    module, _, param = key.rpartition('.')
    if module not in _LM_HEAD_NAMES or param not in _PARAM_NAMES:
        return None
    return f'{_LM_HEAD_NAMES[module]}.{_PARAM_NAMES[param]}'


def load_lm_head_weights(head: nn.Module, source: WeightSource,
                         prefix: str = '') -> Tuple[List[str], List[str]]:
    """Copy an HF BERT-MLM head (``cls.predictions.*``) into ``head`` (a ``LanguageModelHead``).

    ``source`` and ``prefix`` as in :func:`load_bert_weights`. A head tied to word embeddings
    (``head.is_tied``) keeps its shared projection; an untied one takes ``cls.predictions.decoder.weight``
    or, when the checkpoint omits it (HF ties it), the word embeddings ``[bert.]embeddings.
    word_embeddings.weight``. Returns ``(missing, unexpected)`` as :func:`load_bert_weights` (the tied
    projection is not reported missing). Raises ``ValueError`` when ``source`` has no MLM head.
    """
    state = read_bert_state_dict(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else source
    head_state = {key: value for key, value in state.items()
                  if key.startswith(prefix) and lm_head_key_to_ours(key[len(prefix):]) is not None}
    if not head_state:
        where = source if isinstance(source, (str, os.PathLike)) else 'the given state dict'
        raise ValueError(f'{type(head).__name__}: {where!s} holds no BERT masked-LM head weights '
                         f'({prefix}cls.predictions.*); checkpoints saved from BertModel (e.g. sentence '
                         f'encoders such as MiniLM) have none: leave the head freshly initialised')
    decoder_key = f'{prefix}cls.predictions.decoder.weight'
    if head.is_tied:
        head_state.pop(decoder_key, None)
    elif decoder_key not in head_state:
        for embedding_key in ('bert.embeddings.word_embeddings.weight', 'embeddings.word_embeddings.weight'):
            if prefix + embedding_key in state:
                head_state[decoder_key] = state[prefix + embedding_key]
                break
    missing, unexpected = load_bert_weights(head, head_state, prefix, key_map=lm_head_key_to_ours)
    if head.is_tied:
        missing = [name for name in missing if name != 'decoder.weight']
    return missing, unexpected
