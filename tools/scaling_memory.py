"""Activation memory per clip of a training forward pass, measured on any device, and what it implies per GPU
(docs/scaling.md): the bytes of every tensor autograd keeps for the backward pass (saved-tensor hooks, each
storage counted once) in one ``model.loss`` call on a synthetic batch, with and without activation
checkpointing (``with_cp``: then the checkpointed blocks keep only their inputs, counted by forward
pre-hooks), and the parameter count.

    python tools/scaling_memory.py configs/svitt_4f.py configs/dense_4f.py [--batch-size 1] [--out OUT.json]
"""
import argparse
import json
from typing import Dict, List

import torch
from mmengine.config import Config

from svitt_mm.apis import register_all_modules
from svitt_mm.apis.cli import run_tool
from svitt_mm.registry import MODELS


def synthetic_inputs(model, batch: int, frames: int, text_length: int):
    encoder, vocab = model.vision_encoder, model.text_encoder.embeddings.word.num_embeddings
    video = torch.randn(batch, 1, frames, 3, encoder.img_size, encoder.img_size)
    ids = torch.randint(1000, vocab, (batch, text_length))
    return video, dict(text_ids=ids, text_mask=torch.ones_like(ids), text_owner=torch.arange(batch),
                       video_ids=torch.arange(batch), sample_idx=torch.arange(batch))


def saved_bytes(model, video, samples, with_cp: bool) -> int:
    """Bytes kept for the backward pass by one ``model.loss`` (forward only)."""
    storages: Dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    def count_input(module, args) -> None:
        pack(args[0])

    handles = []
    for module in model.modules():
        if hasattr(module, 'with_cp'):
            module.with_cp = with_cp
        if with_cp and type(module).__name__ in ('BEiTBlock', 'BertLayer'):
            handles.append(module.register_forward_pre_hook(count_input))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model.loss(video, samples)
    for handle in handles:
        handle.remove()
    return sum(storages.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--text-length', type=int, default=32)
    parser.add_argument('--out')
    args = parser.parse_args()
    register_all_modules()
    torch.set_grad_enabled(True)
    records: List[dict] = []
    for path in args.configs:
        cfg = Config.fromfile(path)
        cfg.model.vision_encoder.pretrained = None
        cfg.model.text_encoder.pretrained = None  # BERT-base architecture, random weights
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).train()
        frames = cfg.model.vision_encoder.max_frames
        video, samples = synthetic_inputs(model, args.batch_size, frames, args.text_length)
        record = dict(config=path, frames=frames, batch_size=args.batch_size,
                      params=sum(p.numel() for p in model.parameters()),
                      activation_bytes_per_clip=saved_bytes(model, video, samples, False) / args.batch_size,
                      checkpointed_bytes_per_clip=saved_bytes(model, video, samples, True) / args.batch_size)
        records.append(record)
        print(f'{path}: {record["params"] / 1e6:.1f} M parameters, activations '
              f'{record["activation_bytes_per_clip"] / 2**30:.2f} GiB/clip, with checkpointing '
              f'{record["checkpointed_bytes_per_clip"] / 2**30:.3f} GiB/clip', flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(records, f, indent=1)


if __name__ == '__main__':
    run_tool(main)
