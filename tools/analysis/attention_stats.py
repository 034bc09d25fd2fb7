"""Where does the video encoder look? Per layer: mean attention distance in time (frames) and space
(patches) of the local tokens, and the share of attention they give the global [CLS] token.

    python tools/analysis/attention_stats.py CONFIG CHECKPOINT [--num-videos 16] [--out stats.json]
                                             [--plot stats.png] [--cfg-options k=v ...]

The probabilities are those the model's attention operators compute in evaluation: each layer's logits
(with its relative position bias) are recomputed for every pair and masked to the operator's own pattern
(the deterministic evaluation layout of block-sparse operators), so sparse and dense models are measured
the same way. Distances use the tokens' original (t, h, w) positions, so they stay right after pruning.
"""
import argparse
import math
import os.path as osp
from collections import defaultdict

import mmengine
import torch

from svitt_mm.apis import init_model, model_batch
from svitt_mm.apis.cfg_options import CfgOptionsAction
from svitt_mm.apis.cli import run_tool
from svitt_mm.models.attention.block_layout import block_adjacency
from svitt_mm.registry import DATASETS


def allowed_pairs(op, num_tokens: int, num_global: int = 1):
    """Bool ``[N, N]`` of the pairs ``op`` computes in evaluation, or ``None`` when it is dense."""
    if not hasattr(op, 'eval_layout'):
        return None
    layout = op.eval_layout(num_tokens - num_global)
    if layout.is_dense:
        return None
    block = torch.arange(num_tokens - num_global) // layout.block_size
    allowed = torch.ones(num_tokens, num_tokens, dtype=torch.bool)
    allowed[num_global:, num_global:] = block_adjacency(layout.block_index)[block][:, block]
    return allowed


def attention_probs(attn, x: torch.Tensor, index) -> torch.Tensor:
    """The probabilities ``[B, H, N, N]`` that ``attn`` (a ``BEiTSelfAttention``) uses on input ``x``."""
    batch, length, dims = x.shape
    bias = torch.cat([attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias])
    qkv = torch.nn.functional.linear(x, attn.qkv.weight, bias).reshape(batch, length, 3, attn.num_heads, -1)
    q, k, _ = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    seq = torch.arange(length)
    logits = logits + attn.relative_position_bias.bind(index, q.dtype)(seq[:, None], seq[None, :])
    allowed = allowed_pairs(attn.op, length)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float('-inf'))
    return logits.softmax(dim=-1)


def layer_statistics(probs: torch.Tensor, positions: torch.Tensor, frame_grid,
                     tubelet_size: int = 1) -> dict:
    """Mean time (in frames: a tubelet step is ``tubelet_size`` frames) / space distance of local
    queries' attention over local keys, and [CLS] share."""
    height, width = frame_grid
    t = positions.div(height * width, rounding_mode='floor').float() * tubelet_size  # [P, N]
    rest = positions % (height * width)
    h, w = rest.div(width, rounding_mode='floor').float(), (rest % width).float()
    local = probs[:, :, 1:, 1:]  # [B, H, N, N]
    share_global = probs[:, :, 1:, 0]  # [B, H, N]
    weights = local / local.sum(-1, keepdim=True).clamp_min(1e-12)
    dt = (t[:, :, None] - t[:, None, :]).abs()[:, None]  # [P, 1, N, N]
    ds = ((h[:, :, None] - h[:, None, :]) ** 2 + (w[:, :, None] - w[:, None, :]) ** 2).sqrt()[:, None]
    return dict(time=(weights * dt).sum(-1).mean().item(), space=(weights * ds).sum(-1).mean().item(),
                global_share=share_global.mean().item(), tokens=probs.shape[-1])


def collect(model, videos: torch.Tensor) -> list:
    """Per-layer statistics of ``model.vision_encoder`` on ``videos [B, T, 3, H, W]``."""
    encoder = model.vision_encoder
    stats = []

    def hook(attn, args):
        x, index = args
        probs = attention_probs(attn, x, index)
        stats.append(layer_statistics(probs, index.positions, index.frame_grid, encoder.tubelet_size))

    handles = [block.attn.register_forward_pre_hook(hook) for block in encoder.blocks]
    try:
        with torch.no_grad():
            encoder(videos)
    finally:
        for handle in handles:
            handle.remove()
    return stats


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--num-videos', type=int, default=16, help='test videos to average over')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--out', help='write the statistics to this JSON file')
    parser.add_argument('--plot', help='draw the per-layer curves to this PNG')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, cfg_options=args.cfg_options)
    cfg = model.cfg
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    count = min(args.num_videos, len(dataset))
    sums, batches = defaultdict(lambda: defaultdict(float)), 0
    for start in range(0, count, args.batch_size):
        items = [dataset[i] for i in range(start, min(start + args.batch_size, count))]
        videos = model_batch(model, items)['inputs'][:, 0]  # first clip of each video
        for layer, values in enumerate(collect(model, videos)):
            for key, value in values.items():
                sums[layer][key] += value * len(items)
        batches += len(items)
    layers = [{key: value / batches for key, value in sums[layer].items()} for layer in sorted(sums)]
    attention = type(model.vision_encoder.blocks[0].attn.op).__name__
    print(f'{args.config}: {attention}, {batches} videos')
    print(f'{"layer":>5}{"tokens":>8}{"time dist (frames)":>20}{"space dist (patches)":>22}{"[CLS] share":>13}')
    for layer, values in enumerate(layers):
        print(f'{layer:>5}{values["tokens"]:>8.0f}{values["time"]:>20.3f}{values["space"]:>22.3f}'
              f'{values["global_share"]:>13.3f}')
    result = dict(config=args.config, checkpoint=args.checkpoint, attention=attention, videos=batches,
                  layers=layers)
    if args.out:
        mmengine.dump(result, args.out, indent=2)
        print(f'statistics written to {args.out}')
    if args.plot:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
        for ax, key, title in zip(axes, ('time', 'space', 'global_share'),
                                  ('time distance (frames)', 'space distance (patches)', '[CLS] share')):
            ax.plot([values[key] for values in layers], marker='o')
            ax.set_title(title)
            ax.set_xlabel('layer')
        fig.suptitle(f'{osp.basename(args.config)} ({attention})')
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f'plot written to {args.plot}')
    return result


if __name__ == '__main__':
    run_tool(main)
