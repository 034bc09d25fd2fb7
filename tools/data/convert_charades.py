"""Convert Charades' CSV annotations into svitt_mm's script-to-video retrieval format.

Input: ``Charades_v1_{train,test}.csv`` (columns include ``id`` and ``script``). Output:
``[{"video": "<id><ext>", "caption": <script>}]``; rows with an empty script are skipped.

    python tools/data/convert_charades.py Charades_v1_test.csv data/charades/anno/charades_script_test.json
"""
from __future__ import annotations

import argparse
import csv
import json
import os
from typing import Dict, Iterable, List

from svitt_mm.apis.cli import run_tool
from svitt_mm.utils.errors import InputFileError, MissingFileError


def convert_charades(rows: Iterable[Dict[str, str]], video_ext: str = '.mp4',
                     source: str = 'input') -> List[Dict]:
    """CSV rows (dicts with ``id`` and ``script``) -> ``[{"video", "caption": str}]``."""
    entries = []
    for index, row in enumerate(rows):
        for key in ('id', 'script'):
            if key not in row:
                raise InputFileError(f'{source}: row {index} has no "{key}" column')
        if row['script'].strip():
            entries.append(dict(video=row['id'] + video_ext, caption=' '.join(row['script'].split())))
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('source', help='Charades_v1_train.csv or Charades_v1_test.csv')
    parser.add_argument('output', help='output JSON')
    parser.add_argument('--video-ext', default='.mp4', help='suffix added to the video ids')
    args = parser.parse_args()
    if not os.path.isfile(args.source):
        raise MissingFileError(f'Charades CSV file not found: {args.source}')
    with open(args.source, encoding='utf-8', newline='') as f:
        entries = convert_charades(csv.DictReader(f), args.video_ext, args.source)
    with open(args.output, 'w', encoding='utf-8') as f:
        json.dump(entries, f)
    print(f'{args.output}: {len(entries)} videos')


if __name__ == '__main__':
    run_tool(main)
