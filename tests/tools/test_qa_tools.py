"""tools/train.py and tools/test.py end to end on the demo QA split with a tiny video encoder: training
logs the QA loss, validation and test report accuracy per question type, and evaluation is repeatable."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from svitt_mm.datasets.demo import build_temporal_shapes

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = [
    'model.vision_encoder.embed_dims=32', 'model.vision_encoder.num_layers=2',
    'model.vision_encoder.num_heads=2', 'model.vision_encoder.prune_layers=[1]',
    'train_dataloader.batch_size=24', 'val_dataloader.batch_size=36', 'test_dataloader.batch_size=36',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', 'val_dataloader.persistent_workers=False',
    'test_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1',
]


def run_tool(*args):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f'{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def data_options(paths):
    options = [f'model.answer_list={paths["answer_list"]}']
    for loader, split in [('train_dataloader', 'qa_train'), ('val_dataloader', 'qa_test'),
                          ('test_dataloader', 'qa_test')]:
        options += [f'{loader}.dataset.ann_file={paths[split]}',
                    f'{loader}.dataset.media_root={paths["media_root"]}',
                    f'{loader}.dataset.answer_list={paths["answer_list"]}']
    return options


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    return build_temporal_shapes(str(tmp_path_factory.mktemp('demo_qa')), videos_per_caption=1)


def test_train_then_test_the_qa_demo(demo_data, tmp_path):
    work = str(tmp_path / 'work')
    options = ['--cfg-options', *TINY, *data_options(demo_data), 'train_cfg.max_epochs=1',
               'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1']
    log = run_tool('tools/train.py', 'configs/demo/svitt_qa_demo.py', '--work-dir', work, *options)
    output = log.stdout + log.stderr
    assert 'loss_qa' in output and 'acc/direction' in output and 'acc/size' in output
    checkpoint = osp.join(work, 'epoch_1.pth')
    outs = []
    for run in range(2):
        out = str(tmp_path / f'metrics{run}.json')
        run_tool('tools/test.py', 'configs/demo/svitt_qa_demo.py', checkpoint, '--work-dir', work, '--out',
                 out, '--cfg-options', *TINY, *data_options(demo_data))
        with open(out) as f:
            outs.append(json.load(f))
    metrics = outs[0]
    assert metrics['num_questions'] == 72
    assert set(metrics) == {'acc', 'acc/direction', 'acc/size', 'num_questions'}
    # 48 direction and 24 size questions: the overall accuracy is their weighted mean.
    assert metrics['acc'] == pytest.approx((48 * metrics['acc/direction'] + 24 * metrics['acc/size']) / 72)
    assert outs[1] == metrics  # deterministic evaluation


def test_qa_training_with_a_broken_video_finishes_and_names_it(tmp_path):
    """41 training questions on 4 good videos and one truncated one: the default runtime's BrokenMediaHook
    logs the broken file and training finishes (1 skip of 41 samples is under its 5 % limit)."""
    from svitt_mm.testing import write_broken_video, write_gray_video

    media = tmp_path / 'videos'
    good = [write_gray_video(str(media / f'good{i}.mp4'), 4 + i) for i in range(4)]
    broken = write_broken_video(str(media / 'cut.mp4'), 'truncated')
    answers = ['left', 'right', 'up', 'down']
    train = [dict(video=osp.basename(good[i % 4]), question=f'which way does clip {i} move?',
                  answer=answers[i % 4], question_id=i) for i in range(40)]
    train.insert(20, dict(video='cut.mp4', question='which way?', answer='up', question_id='broken'))
    test = train[:4]
    for name, entries in (('qa_train.json', train), ('qa_test.json', test), ('answer_list.json', answers)):
        (tmp_path / name).write_text(json.dumps(entries))
    paths = dict(qa_train=str(tmp_path / 'qa_train.json'), qa_test=str(tmp_path / 'qa_test.json'),
                 answer_list=str(tmp_path / 'answer_list.json'), media_root=str(media))
    options = ['--cfg-options', *TINY, *data_options(paths), 'train_dataloader.batch_size=8',
               'val_dataloader.batch_size=4', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
               'default_hooks.checkpoint.interval=1', 'model.k_test=4']
    log = run_tool('tools/train.py', 'configs/demo/svitt_qa_demo.py', '--work-dir', str(tmp_path / 'work'),
                   *options)
    output = log.stdout + log.stderr
    assert f'skipped broken media file (replaced by a random other sample): {broken}' in output
    assert re.search(r'epoch 1: skipped [12] broken samples of 4[12] fetched', output)
    assert '1 distinct broken files' in output
    assert 'loss_qa' in output and re.search(r'Epoch\(val\).*acc: [\d.]+', output)  # trained, validated
    assert osp.isfile(osp.join(tmp_path, 'work', 'epoch_1.pth'))
