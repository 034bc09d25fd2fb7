"""tools/extract_features.py (resumable, broken videos listed), tools/search.py (ranking and a static
HTML page, drawn by headless Chromium) and tools/publish_model.py on a trained model."""
import hashlib
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, run_tool, tool_env
from svitt_mm.apis import VideoEmbeddings, encode_videos, init_model, rank_videos
from svitt_mm.utils.safetensors_rows import read_header


@pytest.fixture(scope='module')
def video_dir(trained_model, tmp_path_factory):
    """12 demo test videos and one broken file in a folder."""
    folder = tmp_path_factory.mktemp('videos')
    with open(trained_model['paths']['test']) as f:
        names = [entry['video'] for entry in json.load(f)][:12]
    for name in names:
        shutil.copy(osp.join(trained_model['paths']['media_root'], name), folder / osp.basename(name))
    (folder / 'broken.mp4').write_bytes(b'not a video at all')
    return folder


def extract(trained_model, video_dir, out, *extra):
    return [osp.join(ROOT, 'tools', 'extract_features.py'), trained_model['config'], trained_model['checkpoint'],
            '--videos', str(video_dir), '--out', str(out), '--num-workers', '0', *extra]


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extract_features_interrupted_and_rerun_encodes_only_the_rest(trained_model, video_dir, tmp_path,
                                                                      monkeypatch):
    out = tmp_path / 'features.safetensors'
    parts = tmp_path / 'features.safetensors.parts'
    # Interrupted (Ctrl-C) while encoding its third chunk of 2 videos.
    tool = load_tool('extract_features')
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return encode_videos(*args, **kwargs)

    monkeypatch.setattr(tool, 'encode_videos', interrupted)
    with pytest.raises(KeyboardInterrupt):
        tool.main(extract(trained_model, video_dir, out, '--chunk-size', '2')[1:])
    written = list(parts.glob('part-*.safetensors'))
    done = sum(len(json.loads(read_header(str(p))[1]['ids'])) for p in written)
    assert done == 4 and not out.exists()

    rerun = run_tool(extract(trained_model, video_dir, out, '--chunk-size', '4'), cwd=str(tmp_path))
    assert f'13 videos: {done} already in' in rerun.stdout  # and 13 - done to encode (the broken one too)
    assert f'{13 - done} to encode' in rerun.stdout
    assert not parts.exists()
    assert 'broken.mp4' in rerun.stderr and '1 videos could not be decoded' in rerun.stderr
    # The merged file equals one uninterrupted encoding, row for row.
    features = VideoEmbeddings.load(str(out))
    expected_ids = sorted(str(p) for p in video_dir.glob('*.mp4') if p.name != 'broken.mp4')
    assert sorted(features.ids) == expected_ids and len(set(features.ids)) == 12
    assert list(features.failed) == [str(video_dir / 'broken.mp4')]
    metadata = read_header(str(out))[1]
    assert metadata['config'] == trained_model['config'] and metadata['checkpoint'] == trained_model['checkpoint']
    model = init_model(trained_model['config'], trained_model['checkpoint'])
    reference = encode_videos(model, features.ids, progress=False)
    torch.testing.assert_close(features.embeddings, reference.embeddings, atol=1e-5, rtol=0)
    torch.testing.assert_close(features.tokens, reference.tokens, atol=1e-5, rtol=0)

    again = run_tool(extract(trained_model, video_dir, out), cwd=str(tmp_path))
    assert '13 videos: 12 already in' in again.stdout and '1 to encode' in again.stdout


def test_extract_features_user_errors_are_one_line(trained_model, tmp_path):
    proc = run_tool(extract(trained_model, tmp_path / 'nope', tmp_path / 'f.safetensors'), check=False)
    assert proc.returncode != 0 and proc.stderr.strip().splitlines()[-1].startswith('error: --videos')
    assert 'Traceback' not in proc.stderr


@pytest.fixture(scope='module')
def index(trained_model, video_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('index') / 'index.safetensors'
    run_tool(extract(trained_model, video_dir, out))
    return out


def test_search_prints_the_api_ranking_and_writes_a_self_contained_page(trained_model, index, tmp_path):
    page = tmp_path / 'results.html'
    proc = run_tool(['tools/search.py', trained_model['config'], trained_model['checkpoint'], '--index',
                     str(index), '--query', 'a red circle moves left', '--query', 'a blue square grows',
                     '--top-k', '3', '--rerank', '4', '--html', str(page)])
    model = init_model(trained_model['config'], trained_model['checkpoint'])
    expected = rank_videos(model, ['a red circle moves left', 'a blue square grows'],
                           VideoEmbeddings.load(str(index)), top_k=3, rerank=4)
    lines = [line.split() for line in proc.stdout.splitlines() if line.startswith('    ')]
    assert [(line[2], float(line[1])) for line in lines] == [
        (video, pytest.approx(score, abs=1e-4)) for ranking in expected for video, score in ranking]
    text = page.read_text()
    assert text.count('class="result"') == 6 and text.count('data:image/jpeg;base64,') == 18
    assert 'src="http' not in text and 'href=' not in text  # nothing to fetch: opens offline


def test_search_page_is_drawn_by_headless_chromium(trained_model, index, tmp_path):
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    if browser is None:
        pytest.skip('chromium is not installed (make setup installs it where apt-get is available)')
    page = tmp_path / 'results.html'
    run_tool(['tools/search.py', trained_model['config'], trained_model['checkpoint'], '--index', str(index),
              '--query', 'a red circle moves left', '--top-k', '4', '--rerank', '0', '--html', str(page)])
    shot = tmp_path / 'page.png'
    subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', '--window-size=1000,800',
                    f'--screenshot={shot}', page.as_uri()], capture_output=True, timeout=120, env=tool_env())
    assert shot.is_file()
    image = torch.from_numpy(np.array(Image.open(shot).convert('RGB'))).float()
    # The thumbnails (coloured shapes on a dark background) fill the left part of the result rows; an
    # empty or text-only page is almost uniformly light.
    rows = image[120:700, 40:600]
    dark = (rows.mean(dim=2) < 100).float().mean().item()
    colourful = ((rows.max(dim=2).values - rows.min(dim=2).values) > 80).float().mean().item()
    if os.environ.get('SVITT_KEEP_SCREENSHOT'):
        shutil.copy(shot, os.environ['SVITT_KEEP_SCREENSHOT'])
    assert dark > 0.05 and colourful > 0.001, (dark, colourful)


def test_publish_model_strips_training_state_and_init_model_loads_it(trained_model, tmp_path):
    proc = run_tool(['tools/publish_model.py', trained_model['checkpoint'], str(tmp_path / 'tiny_svitt.pth')])
    published = [p for p in tmp_path.iterdir() if p.name.startswith('tiny_svitt-')]
    assert len(published) == 1 and len(published[0].stem.split('-')[-1]) == 8
    assert hashlib.sha256(published[0].read_bytes()).hexdigest().startswith(published[0].stem.split('-')[-1])
    content = torch.load(published[0], weights_only=False)
    assert set(content) == {'state_dict', 'meta'} and 'optimizer' in proc.stdout
    original = init_model(trained_model['config'], trained_model['checkpoint'])
    model = init_model(trained_model['config'], str(published[0]))
    for key, value in original.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
