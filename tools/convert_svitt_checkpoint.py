"""Convert a checkpoint of the published SViTT code into one svitt_mm's ``load_from`` accepts.

    python tools/convert_svitt_checkpoint.py IN OUT [--num-frames T] [--source-frames S]

IN is read safely (``torch.load(weights_only=True)`` or safetensors). The source frame count comes from
the checkpoint's ``config.video_input.num_frames``; reference checkpoints pickle that config as an
OmegaConf object, which safe loading refuses: re-save the weights and a plain config in a trusted session
(the error says how) or pass ``--source-frames``. With ``--num-frames`` different from the source, the
relative position bias tables are resized in time. OUT holds ``{'state_dict', 'meta'}``.
"""
import argparse
import os
import os.path as osp

import torch

from svitt_mm.apis.cli import run_tool
from svitt_mm.models.checkpoint_conversion import convert_svitt_checkpoint


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Convert a SViTT reference checkpoint to svitt_mm names')
    parser.add_argument('source', help='reference checkpoint (.pth with the weights under "model")')
    parser.add_argument('output', help='where to write the converted checkpoint (.pth)')
    parser.add_argument('--num-frames', type=int, default=None,
                        help='frame count of the target model (default: the checkpoint\'s own)')
    parser.add_argument('--source-frames', type=int, default=None,
                        help='frame count the checkpoint was trained with, when its config lacks it')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    conversion = convert_svitt_checkpoint(args.source, args.num_frames, args.source_frames)
    os.makedirs(osp.dirname(osp.abspath(args.output)), exist_ok=True)
    meta = dict(converted_from=osp.abspath(args.source), num_frames=conversion.num_frames,
                source_frames=conversion.source_frames)
    torch.save(dict(state_dict=conversion.state, meta=meta), args.output)
    print(f'wrote {len(conversion.state)} tensors to {args.output} (frames: {conversion.source_frames} -> '
          f'{conversion.num_frames})')
    if conversion.dropped:
        shown = ', '.join(conversion.dropped[:20]) + (' ...' if len(conversion.dropped) > 20 else '')
        print(f'dropped {len(conversion.dropped)} keys with no counterpart: {shown}')


if __name__ == '__main__':
    run_tool(main)
