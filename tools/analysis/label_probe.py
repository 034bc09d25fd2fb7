"""Can a video encoder learn what the demo captions say, given the answers? Trains the config's video
encoder from scratch, with one linear head each for shape (3), colour (4) and motion (6), on temporal-shapes
clips rendered in memory (no files, no text encoder), and reports test accuracy and order sensitivity as it
goes.

    python tools/analysis/label_probe.py CONFIG [--steps 2000] [--batch-size 32] [--lr 1e-3]
        [--clips-per-event 32] [--eval-every 500] [--device cpu|cuda] [--seed 0] [--out probe.json]

The frames are sampled as the config's SampleFrames does (``rand`` in training, ``middle`` in testing). The
motion head answers one of left, right, up, down, grows, shrinks; ``axis`` counts a motion answer as right
when its axis is (left/right, up/down, grows/shrinks), which an order-blind encoder can get. **Order
sensitivity** is the share of test clips for which the motion predicted on the reversed frames is the
reversal of the motion predicted in order: 0 for an encoder blind to frame order (it answers the same for
both), 1 for one that reads direction from the frame order. It separates "the retrieval objective did not
teach it" from "this encoder does not learn it at this budget" (docs/analysis.md).
"""
import argparse
import math
import time
from typing import Callable, Dict, List

import mmengine
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

from svitt_mm.apis import load_config, register_all_modules
from svitt_mm.apis.cfg_options import CfgOptionsAction
from svitt_mm.apis.cli import run_tool
from svitt_mm.datasets.demo.temporal_shapes import (COLORS, MOTIONS, REVERSED_MOTION, SHAPES,
                                                    all_events, render_clip, sample_clip_spec)
from svitt_mm.datasets.transforms.frame_sampling import sample_frame_indices
from svitt_mm.registry import BACKBONES, MODELS
from svitt_mm.utils.errors import UserError

SOURCE_FRAMES = 16  # frames per rendered clip, as in the demo videos
HEADS = {'shape': list(SHAPES), 'colour': list(COLORS), 'motion': list(MOTIONS)}
AXIS = {'moves left': 0, 'moves right': 0, 'moves up': 1, 'moves down': 1, 'grows': 2, 'shrinks': 2}
REVERSED_INDEX = torch.tensor([MOTIONS.index(REVERSED_MOTION[m]) for m in MOTIONS])
AXIS_INDEX = torch.tensor([AXIS[m] for m in MOTIONS])


def render_set(clips_per_event: int, size: int, seed: int):
    """``clips_per_event`` clips of every event (no colour changes): uint8 frames ``[N, 16, size, size, 3]``
    and labels ``[N, 3]`` (shape, colour, motion indices)."""
    rng = np.random.default_rng(seed)
    frames, labels = [], []
    for event in all_events():
        for _ in range(clips_per_event):
            frames.append(render_clip(sample_clip_spec(event, rng, size), SOURCE_FRAMES, size))
            labels.append((SHAPES.index(event.shape), list(COLORS).index(event.colors[0]),
                           MOTIONS.index(event.motion)))
    return np.stack(frames), torch.tensor(labels)


def to_video(frames: np.ndarray, preprocessor: nn.Module) -> torch.Tensor:
    """uint8 ``[B, T, H, W, 3]`` -> float ``[B, T, 3, H, W]`` normalised with the data preprocessor's
    ``mean`` / ``std`` (``[3, 1, 1]`` buffers), on their device (the bytes travel, the floats are made
    there)."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).to(preprocessor.mean.device, non_blocking=True)
    return (video.permute(0, 1, 4, 2, 3).float() - preprocessor.mean) / preprocessor.std


def predictions(features: Callable[[torch.Tensor], torch.Tensor], heads: nn.ModuleDict,
                video: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Predicted class indices per head for ``video`` ``[B, T, 3, H, W]``."""
    embedded = features(video).float()
    return {name: head(embedded).argmax(-1).cpu() for name, head in heads.items()}


def score(in_order: Dict[str, torch.Tensor], reversed_: Dict[str, torch.Tensor],
          labels: torch.Tensor) -> Dict[str, float]:
    """Accuracies (shape, colour, motion, axis) of the in-order predictions and the order sensitivity
    (reversed-frame motion prediction == reversal of the in-order one), each in [0, 1]."""
    motion = in_order['motion']
    return dict(
        shape=(in_order['shape'] == labels[:, 0]).float().mean().item(),
        colour=(in_order['colour'] == labels[:, 1]).float().mean().item(),
        motion=(motion == labels[:, 2]).float().mean().item(),
        axis=(AXIS_INDEX[motion] == AXIS_INDEX[labels[:, 2]]).float().mean().item(),
        order_sensitivity=(reversed_['motion'] == REVERSED_INDEX[motion]).float().mean().item())


@torch.no_grad()
def evaluate(features: Callable[[torch.Tensor], torch.Tensor], heads: nn.ModuleDict, test_frames: np.ndarray,
             labels: torch.Tensor, frame_index: np.ndarray, to_device: Callable, batch_size: int) -> dict:
    """:func:`score` on the test clips, with the frames at ``frame_index`` in order and reversed."""
    in_order: Dict[str, List[torch.Tensor]] = {name: [] for name in heads}
    reversed_: Dict[str, List[torch.Tensor]] = {name: [] for name in heads}
    for start in range(0, len(test_frames), batch_size):
        clip = test_frames[start:start + batch_size][:, frame_index]
        for store, frames in ((in_order, clip), (reversed_, clip[:, ::-1])):
            for name, value in predictions(features, heads, to_device(frames)).items():
                store[name].append(value)
    return score({k: torch.cat(v) for k, v in in_order.items()}, {k: torch.cat(v) for k, v in reversed_.items()},
                 labels)


def clip_frames(cfg: Config) -> int:
    """Frames per clip: ``num_frames`` of the SampleFrames step of the config's test pipeline."""
    for step in cfg.test_dataloader.dataset.pipeline:
        if step.get('type') == 'SampleFrames':
            return int(step['num_frames'])
    raise UserError(f'{cfg.filename}: test_dataloader.dataset.pipeline has no SampleFrames step, '
                     'so the number of frames per clip is unknown')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config whose model.vision_encoder and test pipeline are probed')
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=1e-3, help='AdamW peak learning rate (cosine decay)')
    parser.add_argument('--clips-per-event', type=int, default=32,
                        help='training clips rendered per event (72 events); the test set has 6 per event')
    parser.add_argument('--eval-every', type=int, default=500)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='write the evaluations to this JSON file (rewritten after each one)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE')
    args = parser.parse_args(argv)
    for name in ('steps', 'batch_size', 'clips_per_event', 'eval_every'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    encoder = BACKBONES.build(cfg.model.vision_encoder).to(device)  # as constructed: random, no pretrained
    heads = nn.ModuleDict({name: nn.Linear(encoder.embed_dims, len(classes))
                           for name, classes in HEADS.items()}).to(device)
    preprocessor = MODELS.build(cfg.model.data_preprocessor).to(device)  # the model's mean / std
    size = cfg.model.vision_encoder.get('img_size') or cfg.model.vision_encoder.encoder.img_size
    num_frames = clip_frames(cfg)

    start = time.perf_counter()
    train_frames, train_labels = render_set(args.clips_per_event, size, seed=args.seed * 2 + 1)
    test_frames, test_labels = render_set(6, size, seed=args.seed * 2 + 2)
    print(f'rendered {len(train_frames)} training and {len(test_frames)} test clips '
          f'({size}x{size}, {SOURCE_FRAMES} frames, {num_frames} sampled) in {time.perf_counter() - start:.1f} s')

    autocast = torch.autocast('cuda', dtype=torch.bfloat16, enabled=device.type == 'cuda')

    def features(video: torch.Tensor) -> torch.Tensor:
        with autocast:
            return encoder(video).tokens[:, 0]  # the [CLS] state, as the retrieval heads read it

    def to_device(frames: np.ndarray) -> torch.Tensor:
        return to_video(frames, preprocessor)

    params = list(encoder.parameters()) + list(heads.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    warmup = max(1, args.steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(
        (step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))))
    rng = np.random.default_rng(args.seed)
    test_index = sample_frame_indices(SOURCE_FRAMES, num_frames, sampling='middle')[0]
    evaluations = []
    report = dict(config=args.config, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                  clips_per_event=args.clips_per_event, num_frames=num_frames, device=str(device),
                  cfg_options=args.cfg_options,
                  test_clips=len(test_frames), evaluations=evaluations)
    header = f'{"step":>7}{"loss":>8}{"shape":>8}{"colour":>8}{"motion":>8}{"axis":>8}{"order sens.":>13}'
    print(header)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        encoder.train()
        pick = rng.integers(len(train_frames), size=args.batch_size)
        index = np.stack([sample_frame_indices(SOURCE_FRAMES, num_frames, sampling='rand', rng=rng)[0]
                          for _ in pick])
        video = to_device(train_frames[pick[:, None], index])
        labels = train_labels[torch.from_numpy(pick)].to(device)
        embedded = features(video).float()
        loss = sum(F.cross_entropy(head(embedded), labels[:, i]) for i, head in enumerate(heads.values()))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % args.eval_every == 0 or step == args.steps:
            encoder.eval()
            result = dict(step=step, loss=loss.item(), seconds=round(time.perf_counter() - start, 1),
                          **evaluate(features, heads, test_frames, test_labels, test_index, to_device,
                                     args.batch_size))
            evaluations.append(result)
            print(f'{step:>7}{result["loss"]:>8.3f}' + ''.join(
                f'{100 * result[k]:>8.1f}' for k in ('shape', 'colour', 'motion', 'axis'))
                + f'{100 * result["order_sensitivity"]:>13.1f}', flush=True)
            if args.out:  # after every evaluation, so a long run that is stopped keeps what it measured
                mmengine.dump(report, args.out, indent=2)
    if args.out:
        print(f'evaluations written to {args.out}')
    return report


if __name__ == '__main__':
    run_tool(main)
