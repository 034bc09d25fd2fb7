"""``python -m svitt_mm.datasets.demo OUT_DIR [--seed N] [--videos-per-caption N] [--color-changes]``"""
from __future__ import annotations

import argparse
import time
from typing import List, Optional

from .temporal_shapes import build_temporal_shapes


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog='python -m svitt_mm.datasets.demo',
                                     description='Build the temporal-shapes video-text demo dataset.')
    parser.add_argument('out_dir', help='folder to write videos and annotation files into')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--videos-per-caption', type=int, default=8, help='training videos per caption')
    parser.add_argument('--color-changes', action='store_true',
                        help='add "a {shape} changes from {color} to {color}" events')
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = build_temporal_shapes(args.out_dir, seed=args.seed,
                                  videos_per_caption=args.videos_per_caption,
                                  color_changes=args.color_changes)
    print(f'temporal shapes ready in {time.perf_counter() - start:.1f} s')
    for key, path in paths.items():
        print(f'{key:>10}: {path}')


if __name__ == '__main__':
    main()
