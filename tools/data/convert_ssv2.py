"""Convert Something-Something v2 labels into svitt_mm's retrieval format (label or template captions).

Input: ``something-something-v2-{train,validation}.json``, ``[{"id": str, "label": str, "template": str,
"placeholders": [...]}]``. Output: ``[{"video": "<id><ext>", "caption": str}]`` where the caption is the
``label`` (objects filled in) or the ``template`` with its brackets removed ("[something]" ->
"something").

    python tools/data/convert_ssv2.py something-something-v2-train.json \
        data/ssv2/anno/ssv2_ret_template_train.json --caption template
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List

from svitt_mm.apis.cli import run_tool
from svitt_mm.utils.errors import InputFileError
from svitt_mm.utils.text import read_json

CAPTION_KINDS = ('label', 'template')


def convert_ssv2(records: List[Dict], caption: str = 'label', video_ext: str = '.webm',
                 source: str = 'input') -> List[Dict]:
    """SSv2 records -> ``[{"video", "caption": str}]`` with ``caption`` in ``('label', 'template')``."""
    if caption not in CAPTION_KINDS:
        raise ValueError(f'caption must be one of {CAPTION_KINDS}, got {caption!r}')
    entries = []
    for index, record in enumerate(records):
        for key in ('id', caption):
            if key not in record:
                raise InputFileError(f'{source}: record {index} has no "{key}" key')
        text = record[caption].replace('[', '').replace(']', '')
        entries.append(dict(video=str(record['id']) + video_ext, caption=text))
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('source', help='something-something-v2-{train,validation}.json')
    parser.add_argument('output', help='output JSON')
    parser.add_argument('--caption', choices=CAPTION_KINDS, default='label')
    parser.add_argument('--video-ext', default='.webm', help='suffix added to the video ids')
    args = parser.parse_args()
    entries = convert_ssv2(read_json(args.source, 'SSv2 annotation file'), args.caption, args.video_ext, args.source)
    with open(args.output, 'w', encoding='utf-8') as f:
        json.dump(entries, f)
    print(f'{args.output}: {len(entries)} videos')


if __name__ == '__main__':
    run_tool(main)
