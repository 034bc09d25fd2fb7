"""Show which video tokens a model keeps: per pruning stage of the video encoder, after the text-guided
selection of the fusion encoder (with ``--text``), and the block-sparse attention layout.

    python tools/analysis/visualize_tokens.py CONFIG CHECKPOINT VIDEO [--text "a red circle moves left"] \
        --out DIR [--cfg-options KEY=VALUE ...]

The video is read with the decoding/resizing transforms of the config's test pipeline (OpenVideo,
SampleFrames, DecodeVideoFrames, ClipResize; one clip) and normalised like the model's data preprocessor.
Written to DIR:

* ``stage{i}_layer{l}.png``: the T frames side by side; patches kept after pruning layer ``l`` as they
  are, dropped ones blended 75 % toward black (``frames.png`` when the encoder prunes nothing). With a
  token merger (``TokenMerger``) nothing is dropped: the patches of every group merged into one token
  (two or more patches) are blended 50 % toward a colour of their own (colours repeat after 20 groups),
  patches still on their own are shown as they are;
* ``text_guided.png`` (with ``--text`` and a text-guided pruner): the patches the fusion encoder kept;
* ``contact_sheet.png``: all of the above as rows;
* ``block_layout.png`` (first layer's operator is a ``BlockSparseAttention``): an M x M picture, cell
  (m, j) lit where query block m attends key block j;
* ``tokens.json``: kept positions ``t*Hp*Wp + h*Wp + w`` per stage (for a merger: the position each
  merged token has, the rounded mean of its group's), ``groups`` (for every patch, by position, the token
  it ended in, -1: dropped) and the sizes of the merged groups, counts and the file list.

Frames are upscaled by an integer factor (nearest neighbour), so every pixel of a stage PNG is either the
frame pixel or its dimmed value.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

from svitt_mm.apis import init_model, load_config, register_all_modules  # noqa: E402
from svitt_mm.apis.cfg_options import CfgOptionsAction  # noqa: E402
from svitt_mm.apis.cli import run_tool  # noqa: E402
from svitt_mm.models.attention.block_layout import block_adjacency  # noqa: E402
from svitt_mm.models.attention.block_sparse import BlockSparseAttention  # noqa: E402
from svitt_mm.registry import TRANSFORMS  # noqa: E402
from svitt_mm.utils.errors import MissingFileError, UserError  # noqa: E402

#: test-pipeline transforms that decode and resize the video (text and packing transforms are skipped)
VIDEO_TRANSFORMS = ('OpenVideo', 'SampleFrames', 'DecodeVideoFrames', 'ClipResize')
DIM = 0.25  # dropped patches keep 25 % of their brightness (blended 75 % toward black)
TINT = 0.5  # merged patches are blended 50 % toward their group's colour
GROUP_COLOURS = plt.get_cmap('tab20').colors
GAP = 4  # white pixels between frames in a stage picture
MIN_FRAME_SIDE = 256  # frames are upscaled (integer factor) to at least this many pixels
LAYOUT_CELL = 16  # pixels per block in block_layout.png


@dataclass
class Stage:
    """One selection of patch tokens: ``kept`` original positions ``t*Hp*Wp + h*Wp + w`` (ascending);
    ``groups``: for every patch (by position), the index of the token it ended in, ``-1`` where dropped
    (``None`` for the text-guided selection)."""
    name: str
    title: str
    kept: List[int]
    groups: Optional[List[int]] = None

    def merged_groups(self) -> Dict[int, List[int]]:
        """Token index -> the positions of its patches, for the tokens that stand for two or more."""
        members: Dict[int, List[int]] = {}
        for position, token in enumerate(self.groups or ()):
            if token >= 0:
                members.setdefault(token, []).append(position)
        return {token: patches for token, patches in members.items() if len(patches) > 1}


@dataclass
class TokenReport:
    """What the model kept for one clip.

    ``frames``: uint8 ``[T, H, W, 3]`` model-input frames (before normalisation); ``grid``: ``(Hp, Wp)``
    patches per frame; ``tubelet_size``: frames per token (a kept token shows in all of its frames);
    ``stages``: video-encoder pruning stages in order; ``text_stage``: the text-guided
    selection (or ``None``); ``layout``: bool ``[M, M]`` block adjacency of the first layer (or ``None``).
    """
    frames: np.ndarray
    grid: Tuple[int, int]
    patch_size: int
    tubelet_size: int = 1
    stages: List[Stage] = field(default_factory=list)
    text_stage: Optional[Stage] = None
    layout: Optional[np.ndarray] = None
    notes: List[str] = field(default_factory=list)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Render the video tokens a model keeps')
    parser.add_argument('config', help='config file (Python)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('video', help='video file (any resolution and length)')
    parser.add_argument('--text', help='caption for the text-guided selection of the fusion encoder')
    parser.add_argument('--out', required=True, help='output folder for the PNGs and tokens.json')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config entries')
    return parser.parse_args(argv)


def eval_pipeline(cfg: Config) -> List[dict]:
    """The test pipeline of ``cfg`` (test dataloader, else val dataloader)."""
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('dataset', {}).get('pipeline'):
            return list(loader['dataset']['pipeline'])
    raise UserError('the config has no test_dataloader.dataset.pipeline (nor val_dataloader) to read the '
                     'video with')


def read_clip(video: str, pipeline: Sequence[dict]) -> np.ndarray:
    """Decode and resize one clip of ``video`` with the video transforms of ``pipeline``.

    Returns uint8 ``[T, H, W, 3]`` (``SampleFrames`` is run with ``num_clips=1``).
    """
    steps = []
    for step in pipeline:
        if step['type'] in VIDEO_TRANSFORMS:
            step = copy.deepcopy(dict(step))
            if step['type'] == 'SampleFrames':
                step['num_clips'] = 1
            steps.append(TRANSFORMS.build(step))
    missing = [name for name in VIDEO_TRANSFORMS[:3] if name not in [type(s).__name__ for s in steps]]
    if missing:
        raise UserError(f'the test pipeline lacks {missing}, needed to read the video')
    results: Dict = dict(video_path=video)
    for step in steps:
        results = step(results)
    return np.ascontiguousarray(results['imgs'])


def normalise(model: torch.nn.Module, frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float ``[1, T, 3, H, W]`` with the data preprocessor's mean/std."""
    preprocessor = model.data_preprocessor
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    return ((video - preprocessor.mean) / preprocessor.std)[None]


def tokenize(pipeline: Sequence[dict], text: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """Clean and tokenise ``text`` with the pipeline's CleanCaptions/TokenizeCaptions -> ids, mask ``[1, L]``."""
    results: Dict = dict(captions=[text])
    names = [step['type'] for step in pipeline]
    if 'TokenizeCaptions' not in names:
        raise UserError('--text needs a TokenizeCaptions step in the test pipeline')
    for step in pipeline:
        if step['type'] in ('CleanCaptions', 'TokenizeCaptions'):
            results = TRANSFORMS.build(copy.deepcopy(dict(step)))(results)
    return torch.from_numpy(results['text_ids']), torch.from_numpy(results['text_mask'])


@torch.no_grad()
def analyse(model: torch.nn.Module, frames: np.ndarray, text_ids: Optional[torch.Tensor] = None,
            text_mask: Optional[torch.Tensor] = None) -> TokenReport:
    """Run the video encoder (and, given text, the text and fusion encoders) on one clip.

    ``frames`` uint8 ``[T, H, W, 3]``; ``text_ids``/``text_mask`` ``[1, L]``.
    """
    encoder = model.vision_encoder
    report = TokenReport(frames=frames, grid=tuple(encoder.frame_grid), patch_size=encoder.patch_size,
                         tubelet_size=encoder.tubelet_size)
    out = encoder(normalise(model, frames))
    layers = list(encoder.prune_layers)
    for i, (layer, kept, groups) in enumerate(zip(layers, out.kept_indices, out.token_groups)):
        stage = Stage(f'stage{i + 1}_layer{layer}', f'after layer {layer}: {kept.shape[1]} kept',
                      sorted(kept[0].tolist()), groups[0].tolist())
        merged = stage.merged_groups()
        if merged:
            stage.title = (f'after layer {layer}: {kept.shape[1]} tokens, {len(merged)} of them merged from '
                           f'{sum(map(len, merged.values()))} patches')
        report.stages.append(stage)
    if not report.stages:
        report.notes.append('the video encoder prunes nothing (no prune_layers): all tokens are kept')
    if text_ids is not None:
        text = model.encode_text(text_ids, text_mask)
        fused = model.text_encoder.fuse(text.states, text.mask, model.vision_norm(out.tokens))
        if fused.kept_visual_indices:
            local = fused.kept_visual_indices[-1][0, 1:] - 1  # drop the visual [CLS]
            kept = out.positions.expand(1, -1)[0, local]
            report.text_stage = Stage('text_guided', f'text-guided: {len(local)} kept', sorted(kept.tolist()))
        else:
            report.notes.append('the fusion encoder has no text-guided pruner: nothing selected by the text')
    op = encoder.blocks[0].attn.op
    if isinstance(op, BlockSparseAttention):
        num_local = frames.shape[0] // report.tubelet_size * report.grid[0] * report.grid[1]
        report.layout = block_adjacency(op.eval_layout(num_local).block_index).cpu().numpy()
    else:
        report.notes.append(f'the first layer uses {type(op).__name__}, not a BlockSparseAttention: '
                            'no block layout')
    return report


def upscale(frames: np.ndarray) -> np.ndarray:
    """Nearest-neighbour upscale of ``[T, H, W, 3]`` by ``max(1, MIN_FRAME_SIDE // min(H, W))``."""
    scale = max(1, MIN_FRAME_SIDE // min(frames.shape[1:3]))
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


def patch_pixels(values: np.ndarray, num_frames: int, grid: Tuple[int, int], hw: Tuple[int, int],
                 tubelet_size: int = 1) -> np.ndarray:
    """Per-patch ``values`` ``[P, ...]`` (P: positions ``t*Hp*Wp + h*Wp + w``) -> ``[T, H, W, ...]`` (frames of
    ``hw`` pixels; the patch grid is stretched over the frame, pixels beyond the grid take the last row's or
    column's value). A token of a tubelet covers its patch in each of the tubelet's ``tubelet_size`` frames."""
    values = values.reshape(num_frames // tubelet_size, *grid, *values.shape[1:]).repeat(tubelet_size, axis=0)
    rows = np.minimum(np.arange(hw[0]) * grid[0] // hw[0], grid[0] - 1)
    cols = np.minimum(np.arange(hw[1]) * grid[1] // hw[1], grid[1] - 1)
    return values[:, rows][:, :, cols]


def keep_mask(kept: Sequence[int], num_frames: int, grid: Tuple[int, int],
              hw: Tuple[int, int], tubelet_size: int = 1) -> np.ndarray:
    """Bool ``[T, H, W]``: pixels of the kept patches (see :func:`patch_pixels`)."""
    flags = np.zeros(num_frames // tubelet_size * grid[0] * grid[1], dtype=bool)
    flags[list(kept)] = True
    return patch_pixels(flags, num_frames, grid, hw, tubelet_size)


def group_tint(stage: Stage, num_frames: int, grid: Tuple[int, int], hw: Tuple[int, int],
               tubelet_size: int = 1) -> Optional[np.ndarray]:
    """Float ``[T, H, W, 3]`` colour of each pixel's merge group (NaN where the patch is on its own), or
    ``None`` when the stage merged nothing. Group ``i`` (in token order) gets colour ``i mod 20``."""
    merged = stage.merged_groups()
    if not merged:
        return None
    colours = np.full((num_frames // tubelet_size * grid[0] * grid[1], 3), np.nan)
    for i, patches in enumerate(merged[token] for token in sorted(merged)):
        colours[patches] = GROUP_COLOURS[i % len(GROUP_COLOURS)]
    return patch_pixels(colours, num_frames, grid, hw, tubelet_size)


def render_stage(frames: np.ndarray, kept: Optional[Sequence[int]], grid: Tuple[int, int],
                 tubelet_size: int = 1, stage: Optional[Stage] = None) -> np.ndarray:
    """Frames side by side (``GAP`` white pixels apart), dropped patches dimmed -> uint8 ``[H', W', 3]``.

    ``frames`` uint8 ``[T, H, W, 3]`` at model resolution; ``kept=None`` keeps everything. A ``stage`` that
    merged patches draws its groups instead: merged patches tinted with their group's colour, nothing dimmed.
    """
    big = upscale(frames)
    tint = None if stage is None else group_tint(stage, frames.shape[0], grid, big.shape[1:3], tubelet_size)
    if tint is not None:
        blended = (big * (1 - TINT) + tint * 255 * TINT).round()
        big = np.where(np.isnan(tint), big, blended).astype(np.uint8)
    elif kept is not None:
        mask = keep_mask(kept, frames.shape[0], grid, big.shape[1:3], tubelet_size)
        dimmed = (big.astype(np.float32) * DIM).round().astype(np.uint8)
        big = np.where(mask[..., None], big, dimmed)
    num, height = big.shape[0], big.shape[1]
    gap = np.full((height, GAP, 3), 255, dtype=np.uint8)
    pieces = []
    for t in range(num):
        pieces += [big[t]] + ([gap] if t < num - 1 else [])
    return np.concatenate(pieces, axis=1)


def render_layout(adjacency: np.ndarray) -> np.ndarray:
    """Bool ``[M, M]`` -> uint8 ``[M*c, M*c, 3]`` (c = ``LAYOUT_CELL``): white where query block m (row)
    attends key block j (column), dark grey elsewhere."""
    cells = np.where(adjacency, 255, 40).astype(np.uint8)
    big = cells.repeat(LAYOUT_CELL, axis=0).repeat(LAYOUT_CELL, axis=1)
    return np.repeat(big[..., None], 3, axis=2)


def save_contact_sheet(rows: List[Tuple[str, np.ndarray]], path: str) -> None:
    """All stage pictures as rows of one figure, each titled."""
    width = max(image.shape[1] for _, image in rows)
    height = sum(image.shape[0] for _, image in rows)
    fig, axes = plt.subplots(len(rows), 1, squeeze=False,
                             figsize=(width / 100, height / 100 + 0.35 * len(rows)), dpi=100)
    for ax, (title, image) in zip(axes[:, 0], rows):
        ax.imshow(image, interpolation='nearest')
        ax.set_title(title, fontsize=9)
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(report: TokenReport, out_dir: str, meta: Dict) -> Dict:
    """Write the PNGs and ``tokens.json`` of ``report`` into ``out_dir``; returns the JSON dict."""
    os.makedirs(out_dir, exist_ok=True)
    files: List[str] = []
    rows: List[Tuple[str, np.ndarray]] = []

    def save(name: str, image: np.ndarray) -> None:
        plt.imsave(osp.join(out_dir, name), image)
        files.append(name)

    if not report.stages:
        image = render_stage(report.frames, None, report.grid, report.tubelet_size)
        save('frames.png', image)
        rows.append(('frames (nothing pruned)', image))
    selections = report.stages + ([report.text_stage] if report.text_stage else [])
    for stage in selections:
        image = render_stage(report.frames, stage.kept, report.grid, report.tubelet_size, stage)
        save(f'{stage.name}.png', image)
        rows.append((stage.title, image))
    save_contact_sheet(rows, osp.join(out_dir, 'contact_sheet.png'))
    files.append('contact_sheet.png')
    if report.layout is not None:
        save('block_layout.png', render_layout(report.layout))
    num_frames = report.frames.shape[0]
    tokens = dict(
        meta,
        num_frames=num_frames, grid=list(report.grid), patch_size=report.patch_size,
        tubelet_size=report.tubelet_size,
        num_patches=num_frames // report.tubelet_size * report.grid[0] * report.grid[1],
        position='t*Hp*Wp + h*Wp + w' + (' (t: tubelet)' if report.tubelet_size > 1 else ''),
        stages=[dict(name=s.name, num_kept=len(s.kept), kept=s.kept, groups=s.groups,
                     merged_group_sizes=sorted((len(p) for p in s.merged_groups().values()), reverse=True))
                for s in report.stages],
        text_guided=(dict(num_kept=len(report.text_stage.kept), kept=report.text_stage.kept)
                     if report.text_stage else None),
        block_layout=(report.layout.astype(int).tolist() if report.layout is not None else None),
        notes=report.notes,
        files=files + ['tokens.json'],
    )
    with open(osp.join(out_dir, 'tokens.json'), 'w') as f:
        json.dump(tokens, f, indent=1)
    return tokens


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Command-line entry; returns the ``tokens.json`` dict."""
    args = parse_args(argv)
    for label, path in (('config', args.config), ('checkpoint', args.checkpoint), ('video', args.video)):
        if not osp.isfile(path):
            raise MissingFileError(f'{label} file {path!r} does not exist')
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    pipeline = eval_pipeline(cfg)
    frames = read_clip(args.video, pipeline)
    text = tokenize(pipeline, args.text) if args.text else (None, None)
    model = init_model(cfg, args.checkpoint)
    report = analyse(model, frames, *text)
    meta = dict(config=args.config, checkpoint=args.checkpoint, video=args.video, text=args.text)
    tokens = write_outputs(report, args.out, meta)
    for stage in tokens['stages']:
        merged = stage['merged_group_sizes']
        print(f'{stage["name"]}: {stage["num_kept"]} of {tokens["num_patches"]} patch tokens '
              + (f'left, {len(merged)} of them merged from {sum(merged)} patches' if merged else 'kept'))
    if tokens['text_guided']:
        print(f'text_guided: {tokens["text_guided"]["num_kept"]} kept for {args.text!r}')
    for note in report.notes:
        print(f'note: {note}')
    print(f'wrote to {args.out}: {", ".join(tokens["files"])}')
    return tokens


if __name__ == '__main__':
    run_tool(main)
