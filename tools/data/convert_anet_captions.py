"""Convert ActivityNet Captions annotations into svitt_mm's paragraph-retrieval format.

Input: ``train.json`` / ``val_1.json``, ``{"v_<id>": {"duration": float, "timestamps": [[s, e], ...],
"sentences": [str, ...]}}``. Output: ``[{"video": "v_<id><ext>", "caption": [sentence, ...]}]`` with the
sentences ordered by start time.

    python tools/data/convert_anet_captions.py val_1.json data/anet/anno/anet_ret_val_1.json --video-ext .mp4
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List

from svitt_mm.apis.cli import run_tool
from svitt_mm.utils.errors import InputFileError
from svitt_mm.utils.text import read_json


def convert_anet_captions(annotations: Dict[str, Dict], video_ext: str = '.mp4',
                          source: str = 'input') -> List[Dict]:
    """``{"v_<id>": {"timestamps", "sentences"}}`` -> ``[{"video", "caption": [str]}]`` (input order)."""
    entries = []
    for video, record in annotations.items():
        for key in ('timestamps', 'sentences'):
            if key not in record:
                raise InputFileError(f'{source}: video {video!r} has no "{key}" key')
        if len(record['timestamps']) != len(record['sentences']):
            raise InputFileError(f'{source}: video {video!r}: {len(record["timestamps"])} timestamps but '
                                 f'{len(record["sentences"])} sentences')
        ordered = sorted(zip(record['timestamps'], range(len(record['sentences'])), record['sentences']))
        entries.append(dict(video=video + video_ext, caption=[text.strip() for _, _, text in ordered]))
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('source', help='ActivityNet Captions train.json or val_1.json')
    parser.add_argument('output', help='output JSON (e.g. data/anet/anno/anet_ret_train.json)')
    parser.add_argument('--video-ext', default='.mp4', help='suffix added to the video ids')
    args = parser.parse_args()
    entries = convert_anet_captions(read_json(args.source, 'ActivityNet Captions file'), args.video_ext, args.source)
    with open(args.output, 'w', encoding='utf-8') as f:
        json.dump(entries, f)
    print(f'{args.output}: {len(entries)} videos')


if __name__ == '__main__':
    run_tool(main)
