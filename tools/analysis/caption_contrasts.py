"""Which distinctions has a retrieval model learned? For every two test captions that differ in exactly one
word, grouped by that word pair ("left/right", "red/blue", ...): how often the contrastive embeddings pick
the right caption of the two for each of the two videos, and how alike the two captions' and the two
videos' embeddings are.

    python tools/analysis/caption_contrasts.py CONFIG CHECKPOINT [--batch-size 16] [--out contrasts.json]
                                               [--cfg-options k=v ...]

Accuracy 50 % means the model cannot tell the pair apart (chance); a cosine near 1 means the two embeddings
are nearly the same. On the demo data, "left/right", "up/down" and "grows/shrinks" pairs are time reversals
of each other: an order-blind model stays at 50 % on them however well it learns the rest.
"""
import argparse
import itertools
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import mmengine
import torch
from mmengine.config import DictAction

from svitt_mm.apis import init_model, model_batch
from svitt_mm.apis.cli import run_tool
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='retrieval config (its test_dataloader is used)')
    parser.add_argument('checkpoint', help='checkpoint to load')
    parser.add_argument('--batch-size', type=int, default=16, help='videos per forward pass')
    parser.add_argument('--out', help='write the table as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
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
    print(f'{args.checkpoint}: {len(captions)} captions, {len(table)} word pairs that separate two captions')
    print(f'{"words":<22}{"pairs":>7}{"accuracy %":>12}{"text cos":>10}{"video cos":>11}')
    for row in table:
        print(f'{row["words"]:<22}{row["pairs"]:>7}{row["accuracy"]:>12.1f}{row["text_cos"]:>10.3f}'
              f'{row["video_cos"]:>11.3f}')
    print('accuracy: for each video of a pair, its own caption is the more similar one (chance 50 %)')
    result = dict(config=args.config, checkpoint=args.checkpoint, captions=len(captions), contrasts=table)
    if args.out:
        mmengine.dump(result, args.out, indent=2)
        print(f'contrasts written to {args.out}')
    return result


if __name__ == '__main__':
    run_tool(main)
