"""Encode a video collection with a trained retrieval model into one feature file (for tools/search.py).

    python tools/extract_features.py CONFIG CHECKPOINT (--videos DIR | --ann FILE [--media-root DIR])
                                     --out FEATURES.safetensors [--batch-size 8] [--num-workers 2]
                                     [--chunk-size 256] [--device cpu] [--cfg-options k=v ...]

Videos are encoded in chunks of ``--chunk-size``; each finished chunk is written to ``OUT.parts/`` at
once, so memory stays bounded and an interrupted run, started again with the same command, skips every
video already written (in ``OUT`` or its parts) and encodes only the rest. When all are done the parts
are merged into ``OUT`` (copied in pieces, never loaded whole). Videos that cannot be decoded are skipped,
listed with the reason at the end and stored in the file's ``failed`` metadata; a later run tries them
again. The file format is described in :mod:`svitt_mm.apis.embeddings`.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys

from tqdm import tqdm

from svitt_mm.apis import VideoEmbeddings, encode_videos, init_model
from svitt_mm.apis.cfg_options import CfgOptionsAction
from svitt_mm.apis.cli import run_tool
from svitt_mm.utils.errors import InputFileError, MissingFileError, UserError
from svitt_mm.utils.safetensors_rows import concat_rows, read_header
from svitt_mm.utils.text import read_json_list

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.webm', '.mov', '.m4v', '.mpg', '.mpeg', '.flv', '.wmv',
                    '.gif', '.3gp', '.ts')
PART = 'part-{:05d}.safetensors'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file the model was trained with')
    parser.add_argument('checkpoint', help='checkpoint file')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--videos', metavar='DIR', help='encode every video file under DIR (recursively)')
    source.add_argument('--ann', metavar='FILE', help='encode the videos of a JSON annotation file (its '
                        '"video" fields, relative to --media-root)')
    parser.add_argument('--media-root', help='folder the annotation\'s video paths are relative to '
                        '(default: the annotation file\'s folder)')
    parser.add_argument('--out', required=True, help='feature file to write (.safetensors)')
    parser.add_argument('--batch-size', type=int, default=8, help='videos per forward pass')
    parser.add_argument('--num-workers', type=int, default=2, help='video-decoding processes')
    parser.add_argument('--chunk-size', type=int, default=256, help='videos encoded between two writes')
    parser.add_argument('--device', default='cpu', help="e.g. 'cpu' or 'cuda'")
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config entries')
    return parser.parse_args(argv)


def list_videos(args) -> tuple:
    """``(ids, paths)``: ids are the paths as given (or the annotation's ``video`` fields)."""
    if args.videos is not None:
        if not osp.isdir(args.videos):
            raise MissingFileError(f'--videos {args.videos!r} is not a folder')
        paths = sorted(path for path in glob.glob(osp.join(args.videos, '**', '*'), recursive=True)
                       if path.lower().endswith(VIDEO_EXTENSIONS) and osp.isfile(path))
        if not paths:
            raise InputFileError(f'no video files ({", ".join(VIDEO_EXTENSIONS)}) under {args.videos!r}')
        return paths, paths
    entries = read_json_list(args.ann, '{"video": ...}')
    root = args.media_root if args.media_root is not None else osp.dirname(args.ann)
    ids = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get('video'), str):
            raise InputFileError(f'{args.ann}: entry {index} has no "video" string')
        ids.append(entry['video'])
    ids = list(dict.fromkeys(ids))
    return ids, [osp.join(root, video) for video in ids]


def written_ids(path: str) -> list:
    return json.loads(read_header(path)[1].get('ids', '[]'))


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.chunk_size < 1 or args.batch_size < 1:
        raise UserError('--chunk-size and --batch-size must be >= 1')
    ids, paths = list_videos(args)
    parts_dir = args.out + '.parts'
    os.makedirs(parts_dir, exist_ok=True)
    previous = [args.out] if osp.isfile(args.out) else []
    parts = sorted(glob.glob(osp.join(parts_dir, 'part-*.safetensors')))
    for path in previous + parts:
        written = read_header(path)[1].get('checkpoint')
        if written != args.checkpoint:
            raise InputFileError(f'{path} holds features of checkpoint {written!r}, not {args.checkpoint!r}; '
                                 f'write to another --out, or delete it to start again')
    done = {video_id for path in previous + parts for video_id in written_ids(path)}
    todo = [(video_id, path) for video_id, path in zip(ids, paths) if video_id not in done]
    print(f'{len(ids)} videos: {len(ids) - len(todo)} already in {args.out} or its parts, {len(todo)} to encode')
    model = init_model(args.config, args.checkpoint, args.device, args.cfg_options)
    source = dict(config=args.config, checkpoint=args.checkpoint)
    with tqdm(total=len(ids), initial=len(ids) - len(todo), unit='video', desc='encoding videos') as bar:
        for start in range(0, len(todo), args.chunk_size):
            chunk = todo[start:start + args.chunk_size]
            embeddings = encode_videos(model, [path for _, path in chunk], args.batch_size, args.num_workers,
                                       progress=bar, skip_broken=True, ids=[video_id for video_id, _ in chunk])
            embeddings.source = source
            part = osp.join(parts_dir, PART.format(len(parts)))
            embeddings.save(part + '.tmp')
            os.replace(part + '.tmp', part)  # a killed run never leaves a half-written part
            parts.append(part)
    # Merge: rows of the previous file, then of each part; failures not encoded since are kept.
    sources = previous + parts
    metadata = [read_header(path)[1] for path in sources]
    all_ids = [video_id for path in sources for video_id in written_ids(path)]
    failed = {}
    for meta in metadata:
        failed.update(json.loads(meta.get('failed', '{}')))
    failed = {video_id: reason for video_id, reason in failed.items() if video_id not in set(all_ids)}
    merged = VideoEmbeddings(ids=all_ids, embeddings=None, clip_embeddings=None, tokens=None, failed=failed,
                             source=source).metadata()
    concat_rows(sources, args.out, merged)
    shutil.rmtree(parts_dir)
    print(f'wrote {len(all_ids)} videos to {args.out}')
    if failed:
        print(f'{len(failed)} videos could not be decoded and were skipped (listed in the file\'s "failed" '
              f'metadata; a later run tries them again):', file=sys.stderr)
        for video_id, reason in failed.items():
            print(f'  {video_id}: {reason}', file=sys.stderr)
    return dict(ids=all_ids, failed=failed)


if __name__ == '__main__':
    run_tool(main)
