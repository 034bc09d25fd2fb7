"""Convert DiDeMo's original moment annotations into svitt_mm's paragraph-retrieval format.

Input: ``{train,val,test}_data.json``, a list of moments ``{"video": str, "description": str,
"times": [[start, end], ...], ...}`` (several per video). Output: one entry per video,
``{"video": "<video><ext>", "caption": [sentence, ...]}``, sentences ordered by their earliest start time.

    python tools/data/convert_didemo.py train_data.json data/didemo/anno/didemo_ret_train.json
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List

from svitt_mm.apis.cli import run_tool
from svitt_mm.utils.errors import InputFileError
from svitt_mm.utils.text import read_json


def convert_didemo(moments: List[Dict], video_ext: str = '',
                   source: str = 'input') -> List[Dict]:
    """Group ``moments`` by video into ``[{"video", "caption": [str]}]`` (videos in first-seen order)."""
    by_video: Dict[str, List] = {}
    for index, moment in enumerate(moments):
        for key in ('video', 'description', 'times'):
            if key not in moment:
                raise InputFileError(f'{source}: moment {index} has no "{key}" key')
        start = min(segment[0] for segment in moment['times'])
        by_video.setdefault(moment['video'], []).append((start, index, moment['description'].strip()))
    return [dict(video=video + video_ext, caption=[text for _, _, text in sorted(sentences)])
            for video, sentences in by_video.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('source', help="DiDeMo's {train,val,test}_data.json")
    parser.add_argument('output', help='output JSON (e.g. data/didemo/anno/didemo_ret_train.json)')
    parser.add_argument('--video-ext', default='', help='suffix added to the video names, e.g. .mp4')
    args = parser.parse_args()
    entries = convert_didemo(read_json(args.source, 'DiDeMo annotation file'), args.video_ext, args.source)
    with open(args.output, 'w', encoding='utf-8') as f:
        json.dump(entries, f)
    print(f'{args.output}: {len(entries)} videos')


if __name__ == '__main__':
    run_tool(main)
