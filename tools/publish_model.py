"""Prepare a training checkpoint for release: keep the weights, the config and the meta, drop the
optimizer, scheduler, message-hub and random-generator state, and append the first 8 hex digits of the
file's sha256 to its name (the OpenMMLab convention), e.g. ``svitt_demo.pth`` -> ``svitt_demo-1a2b3c4d.pth``.

    python tools/publish_model.py work_dirs/svitt_demo/epoch_12.pth svitt_demo.pth

``svitt_mm.apis.init_model(CONFIG, PUBLISHED)`` and ``tools/test.py`` load the result.
"""
import argparse
import hashlib
import os
import os.path as osp

import torch

from svitt_mm.apis.cli import run_tool
from svitt_mm.utils.errors import InputFileError, UserError
from svitt_mm.utils.safe_load import load_weights_file
from svitt_mm.utils.safe_resume import register_safe_checkpoint_globals

KEPT = ('state_dict', 'meta')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('in_file', help='checkpoint written by training (e.g. work_dirs/NAME/epoch_12.pth)')
    parser.add_argument('out_file', help='name of the published file (.pth); the hash is appended to it')
    return parser.parse_args(argv)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def main(argv=None) -> str:
    args = parse_args(argv)
    if not args.out_file.endswith('.pth'):
        raise UserError(f'out_file {args.out_file!r} must end with .pth')
    register_safe_checkpoint_globals()
    checkpoint = load_weights_file(args.in_file, 'checkpoint')
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise InputFileError(f'{args.in_file} is not a training checkpoint (no "state_dict")')
    published = {key: checkpoint[key] for key in KEPT if key in checkpoint}
    published['state_dict'] = {key: value.cpu() for key, value in published['state_dict'].items()}
    os.makedirs(osp.dirname(osp.abspath(args.out_file)), exist_ok=True)
    tmp = args.out_file + '.tmp'
    torch.save(published, tmp)
    final = f'{args.out_file[:-len(".pth")]}-{sha256_of(tmp)[:8]}.pth'
    os.replace(tmp, final)
    dropped = sorted(set(checkpoint) - set(published))
    print(f'{final}: {osp.getsize(final) / 2**20:.1f} MiB (from {osp.getsize(args.in_file) / 2**20:.1f} MiB; '
          f'dropped {", ".join(dropped) or "nothing"})')
    return final


if __name__ == '__main__':
    run_tool(main)
