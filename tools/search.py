"""Text-to-video search over a feature file written by tools/extract_features.py.

    python tools/search.py CONFIG CHECKPOINT --index FEATURES.safetensors --query TEXT [--query TEXT ...]
                           [--top-k 10] [--rerank K] [--html results.html] [--device cpu]

Ranks the indexed videos for each query by contrastive similarity, then re-ranks each query's best
``--rerank`` videos with the matching head (default: the config's ``test_cfg.k_test``, as tools/test.py
evaluates; ``--rerank 0`` skips it). ``--html`` writes one self-contained page (thumbnails of the first,
middle and last frame of every result embedded in it) that opens offline in any browser.
"""
import argparse
import base64
import html
import io
import sys
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

from svitt_mm.apis import VideoEmbeddings, init_model, rank_videos
from svitt_mm.apis.cfg_options import CfgOptionsAction
from svitt_mm.apis.cli import run_tool
from svitt_mm.datasets.transforms import VideoDecodeError, open_video, read_frames
from svitt_mm.utils.errors import InputFileError, UserError

THUMBNAIL_WIDTH = 160
PAGE_STYLE = '''
body { font-family: sans-serif; margin: 2em; background: #fafafa; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; } td { padding: 6px 10px; border-bottom: 1px solid #ddd; vertical-align: middle; }
td.rank { font-weight: bold; } td.score { font-family: monospace; } td.path { font-family: monospace; }
img { height: 90px; margin-right: 4px; border: 1px solid #999; } .missing { color: #a00; }
'''


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file the model was trained with')
    parser.add_argument('checkpoint', help='checkpoint file (the one the index was extracted with)')
    parser.add_argument('--index', required=True, help='feature file from tools/extract_features.py')
    parser.add_argument('--query', action='append', required=True, help='a text query (repeat for more)')
    parser.add_argument('--top-k', type=int, default=10, help='results per query')
    parser.add_argument('--rerank', type=int, help='re-rank this many best videos per query with the matching '
                        'head (default: the config\'s test_cfg.k_test; 0: contrastive similarity only)')
    parser.add_argument('--html', help='write the results as a self-contained HTML page')
    parser.add_argument('--device', default='cpu', help="e.g. 'cpu' or 'cuda'")
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config entries')
    return parser.parse_args(argv)


def thumbnails(path: str) -> List[str]:
    """The first, middle and last frame of ``path`` as JPEG data URIs, ``THUMBNAIL_WIDTH`` wide.

    Raises :class:`VideoDecodeError` when the video cannot be read.
    """
    reader = open_video(path)
    try:
        last = len(reader) - 1
        frames = read_frames(reader, np.array([0, last // 2, last]))
    finally:
        reader.close()
    uris = []
    for frame in frames:
        image = Image.fromarray(frame)
        height = max(1, round(image.height * THUMBNAIL_WIDTH / image.width))
        buffer = io.BytesIO()
        image.resize((THUMBNAIL_WIDTH, height)).save(buffer, format='JPEG', quality=85)
        uris.append('data:image/jpeg;base64,' + base64.b64encode(buffer.getvalue()).decode())
    return uris


def results_page(queries: Sequence[str], rankings: Sequence[Sequence[Tuple[str, float]]], title: str) -> str:
    """One static HTML page: per query, a table of rank, frames, video path and score."""
    sections = []
    for query, ranking in zip(queries, rankings):
        rows = []
        for rank, (video_id, score) in enumerate(ranking, 1):
            try:
                frames = ''.join(f'<img src="{uri}" alt="frame">' for uri in thumbnails(video_id))
            except VideoDecodeError as error:
                frames = f'<span class="missing">cannot show frames: {html.escape(error.reason)}</span>'
            rows.append(f'<tr class="result"><td class="rank">{rank}</td><td>{frames}</td>'
                        f'<td class="path">{html.escape(video_id)}</td><td class="score">{score:.4f}</td></tr>')
        sections.append(f'<h2 class="query">{html.escape(query)}</h2>\n<table>\n' + '\n'.join(rows) + '\n</table>')
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{PAGE_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n'
            + '\n'.join(sections) + '\n</body></html>\n')


def main(argv=None) -> List[List[Tuple[str, float]]]:
    args = parse_args(argv)
    if args.top_k < 1:
        raise UserError('--top-k must be >= 1')
    index = VideoEmbeddings.load(args.index)
    if len(index) == 0:
        raise InputFileError(f'{args.index} holds no videos')
    if index.source.get('checkpoint') not in ('', args.checkpoint):
        print(f'warning: {args.index} was extracted with checkpoint {index.source["checkpoint"]!r}, not '
              f'{args.checkpoint!r}; the scores mean nothing unless the two hold the same weights',
              file=sys.stderr)
    model = init_model(args.config, args.checkpoint, args.device, args.cfg_options)
    test_cfg = model.cfg.get('test_cfg') or {}
    rerank = args.rerank if args.rerank is not None else int(test_cfg.get('k_test', 0))
    rankings = rank_videos(model, args.query, index, top_k=args.top_k, rerank=max(0, rerank))
    how = (f"top {min(rerank, len(index))} re-ranked by {test_cfg.get('score', 'itm')}" if rerank > 0
           else 'contrastive only')
    for query, ranking in zip(args.query, rankings):
        print(f'query: {query!r} ({len(index)} videos, {how})')
        for rank, (video_id, score) in enumerate(ranking, 1):
            print(f'  {rank:>3}  {score:9.4f}  {video_id}')
    if args.html:
        with open(args.html, 'w', encoding='utf-8') as f:
            f.write(results_page(args.query, rankings, f'svitt_mm search: {len(index)} videos, {how}'))
        print(f'wrote {args.html}')
    return rankings


if __name__ == '__main__':
    run_tool(main)
