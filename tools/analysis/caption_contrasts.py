"""Which distinctions has a retrieval model learned? For every two test captions that differ in exactly one
word, grouped by that word pair ("left/right", "red/blue", ...): how often the contrastive embeddings pick
the right caption of the two for each of the two videos, and how alike the two captions' and the two
videos' embeddings are.

    python tools/analysis/caption_contrasts.py CONFIG CHECKPOINT [--batch-size 16] [--out contrasts.json]
                                               [--locations DIR] [--cfg-options k=v ...]

Accuracy 50 % means the model cannot tell the pair apart (chance); a cosine near 1 means the two embeddings
are nearly the same. On the demo data, "left/right", "up/down" and "grows/shrinks" pairs are time reversals
of each other: an order-blind model stays at 50 % on them however well it learns the rest.

``--locations DIR`` also writes a *location* test set to DIR (temporal-shapes clips, see
:func:`location_clip_specs`) and reports its contrasts: every event that does not move sideways (48) once
on the left and once on the right half of a plain background, captioned "a red circle on the left grows" /
"... on the right ...". The two clips of a pair differ only in where the shape is, so their "left/right"
video cosine says whether the video encoder tells the places apart at all (1.000: it does not).
"""
import argparse
import dataclasses
import itertools
import json
import os
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import mmengine
import torch
import numpy as np

from svitt_mm.apis import init_model, model_batch
from svitt_mm.apis.cfg_options import CfgOptionsAction
from svitt_mm.apis.cli import run_tool
from svitt_mm.datasets.demo.temporal_shapes import (TRIANGLE_SCALE, ClipSpec, Event, all_events, render_clip,
                                                    sample_clip_spec, write_video)
from svitt_mm.registry import DATASETS
from svitt_mm.utils.errors import UserError


def contrast_words(first: str, second: str) -> Optional[Tuple[str, str]]:
    """The (sorted) word pair in which two captions differ, if they differ in exactly one word."""
    words_a, words_b = first.lower().split(), second.lower().split()
    if len(words_a) != len(words_b):
        return None
    diff = [(a, b) for a, b in zip(words_a, words_b) if a != b]
    return tuple(sorted(diff[0])) if len(diff) == 1 else None


def contrast_table(captions: List[str], caption_video: List[int], text_embeddings: torch.Tensor,
                   video_embeddings: torch.Tensor) -> List[Dict[str, object]]:
    """One row per word pair: pairs, accuracy (both directions of every pair), text and video cosines.

    Args:
        captions: the test captions; ``caption_video[i]`` is the index of caption ``i``'s video.
        text_embeddings: unit-norm ``[num_captions, E]``; video_embeddings: unit-norm ``[num_videos, E]``.
    """
    similarity = text_embeddings @ video_embeddings.T
    rows: Dict[Tuple[str, str], Dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for i, j in itertools.combinations(range(len(captions)), 2):
        words = contrast_words(captions[i], captions[j])
        if words is None or caption_video[i] == caption_video[j]:
            continue
        video_i, video_j = caption_video[i], caption_video[j]
        row = rows[words]
        # For each of the two videos: is its own caption the more similar of the two?
        row['correct'] += [float(similarity[i, video_i] > similarity[j, video_i]),
                           float(similarity[j, video_j] > similarity[i, video_j])]
        row['text_cos'].append(float(text_embeddings[i] @ text_embeddings[j]))
        row['video_cos'].append(float(video_embeddings[video_i] @ video_embeddings[video_j]))
    table = [dict(words='/'.join(words), pairs=len(row['text_cos']),
                  accuracy=100 * sum(row['correct']) / len(row['correct']),
                  text_cos=sum(row['text_cos']) / len(row['text_cos']),
                  video_cos=sum(row['video_cos']) / len(row['video_cos']))
             for words, row in rows.items()]
    return sorted(table, key=lambda row: (row['accuracy'], row['words']))


@torch.no_grad()
def embed_test_set(model, dataset, batch_size: int) -> Tuple[List[str], List[int], torch.Tensor, torch.Tensor]:
    """Captions, caption -> video index, and the contrastive embeddings of all test captions and videos
    (first clip of each video), computed as the test loop computes them."""
    captions, caption_video, texts, videos = [], [], [], []
    for start in range(0, len(dataset), batch_size):
        indices = range(start, min(start + batch_size, len(dataset)))
        items = [dataset[i] for i in indices]
        batch = model_batch(model, items)
        video, text = model.extract_features(batch['inputs'], batch['data_samples'])
        videos.append(video.embedding[:, 0])
        texts.append(text.embedding)
        for index in indices:
            for caption in dataset.get_data_info(index)['captions']:
                captions.append(caption)
                caption_video.append(index)
    texts = torch.cat(texts)
    if texts.shape[0] != len(captions):
        raise UserError(f'the model embedded {texts.shape[0]} captions for {len(captions)} in the '
                         f'test annotations; use an evaluation-mode retrieval dataset')
    return captions, caption_video, texts, torch.cat(videos)


SIDES = ('left', 'right')
LOCATION_MOTIONS = ('moves up', 'moves down', 'grows', 'shrinks')  # the shape stays on its side
LOCATION_TEXT_LENGTH = 12  # tokens: the longest location caption has 8 words, 10 tokens with [CLS], [SEP]


def location_caption(event: Event, side: str) -> str:
    """``"a red circle on the left grows"``."""
    return f'a {event.colors[0]} {event.shape} on the {side} {event.motion}'


def location_clip_specs(event: Event, rng: np.random.Generator, size: int) -> Dict[str, ClipSpec]:
    """One random clip of ``event`` (a motion of :data:`LOCATION_MOTIONS`) on a plain background (no
    gradient), placed once as far left and once as far right as the shape fits: side -> spec. The two
    specs differ only in the shape's horizontal position (mirror images of each other, as the shapes are
    left-right symmetric)."""
    spec = dataclasses.replace(sample_clip_spec(event, rng, size), gradient=(0.0, 0.0))
    reach = TRIANGLE_SCALE * max(spec.radii) + 0.5  # half the box that holds the shape, as the generator
    columns = dict(left=reach, right=size - reach)
    return {side: dataclasses.replace(spec, centers=tuple((column, y) for _, y in spec.centers))
            for side, column in columns.items()}


def write_location_set(out_dir: str, size: int, num_frames: int = 16, seed: int = 0) -> Tuple[str, str]:
    """Write the location test set (videos and ``locations.json`` in VideoTextDataset's format) under
    ``out_dir``: for every event of :data:`LOCATION_MOTIONS`, its left clip, then its right clip.
    Returns ``(ann_file, media_root)``."""
    media_root = os.path.join(os.path.abspath(out_dir), 'videos')
    os.makedirs(media_root, exist_ok=True)
    annotations = []
    events = [event for event in all_events() if event.motion in LOCATION_MOTIONS]
    for index, event in enumerate(events):
        specs = location_clip_specs(event, np.random.default_rng([seed, index]), size)
        for side in SIDES:
            name = f'{index:03d}_{side}.mp4'
            write_video(os.path.join(media_root, name), render_clip(specs[side], num_frames, size))
            annotations.append(dict(video=name, caption=location_caption(event, side)))
    ann_file = os.path.join(os.path.abspath(out_dir), 'locations.json')
    with open(ann_file, 'w', encoding='utf-8') as f:
        json.dump(annotations, f, indent=0)
    return ann_file, media_root


def location_dataset_config(test_dataset: dict, ann_file: str, media_root: str) -> dict:
    """The config's test dataset reading the location set, with captions tokenised up to
    :data:`LOCATION_TEXT_LENGTH` tokens (the demo's ``max_length`` would cut "moves up")."""
    dataset = dict(test_dataset, ann_file=ann_file, media_root=media_root)
    dataset['pipeline'] = [dict(step, max_length=max(step.get('max_length', 0), LOCATION_TEXT_LENGTH))
                           if step.get('type') == 'TokenizeCaptions' else step for step in dataset['pipeline']]
    return dataset


def print_table(title: str, captions: int, table: List[Dict[str, object]]) -> None:
    print(f'{title}: {captions} captions, {len(table)} word pairs that separate two captions')
    print(f'{"words":<22}{"pairs":>7}{"accuracy %":>12}{"text cos":>10}{"video cos":>11}')
    for row in table:
        print(f'{row["words"]:<22}{row["pairs"]:>7}{row["accuracy"]:>12.1f}{row["text_cos"]:>10.3f}'
              f'{row["video_cos"]:>11.3f}')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='retrieval config (its test_dataloader is used)')
    parser.add_argument('checkpoint', help='checkpoint to load')
    parser.add_argument('--batch-size', type=int, default=16, help='videos per forward pass')
    parser.add_argument('--out', help='write the table as JSON here')
    parser.add_argument('--locations', metavar='DIR',
                        help='also write the location test set (left/right on a plain background) to DIR '
                             'and report its contrasts')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, help='override config keys')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, cfg_options=args.cfg_options)
    cfg = model.cfg
    if not hasattr(model, 'contrastive_head'):
        raise UserError(f'{args.config} builds a {type(model).__name__}, which has no contrastive '
                         f'embeddings; caption contrasts need a retrieval model')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    captions, caption_video, texts, videos = embed_test_set(model, dataset, args.batch_size)
    table = contrast_table(captions, caption_video, texts, videos)
    print_table(args.checkpoint, len(captions), table)
    result = dict(config=args.config, checkpoint=args.checkpoint, cfg_options=args.cfg_options,
                  captions=len(captions), contrasts=table)
    if args.locations:
        size = cfg.model.vision_encoder.get('img_size') or cfg.model.vision_encoder.encoder.img_size
        ann_file, media_root = write_location_set(args.locations, size)
        locations = DATASETS.build(location_dataset_config(cfg.test_dataloader.dataset, ann_file, media_root))
        captions, caption_video, texts, videos = embed_test_set(model, locations, args.batch_size)
        table = contrast_table(captions, caption_video, texts, videos)
        print_table(f'location set {ann_file}', len(captions), table)
        result.update(location_captions=len(captions), location_contrasts=table)
    print('accuracy: for each video of a pair, its own caption is the more similar one (chance 50 %)')
    if args.out:
        mmengine.dump(result, args.out, indent=2)
        print(f'contrasts written to {args.out}')
    return result


if __name__ == '__main__':
    run_tool(main)
