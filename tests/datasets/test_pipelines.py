from svitt_mm.datasets.pipelines import retrieval_pipelines


def test_retrieval_pipelines_state_each_value_once():
    train, test = retrieval_pipelines(8, 224, 'tok', 32, num_test_clips=3)
    types = [t['type'] for t in train]
    assert types == ['OpenVideo', 'SampleFrames', 'DecodeVideoFrames', 'ClipRandomResizedCrop', 'ClipFlip',
                     'CleanCaptions', 'TokenizeCaptions', 'PackVideoTextInputs']
    assert train[1] == dict(type='SampleFrames', num_frames=8, num_clips=1, sampling='rand')
    assert test[1] == dict(type='SampleFrames', num_frames=8, num_clips=3, sampling='middle')
    assert test[3]['type'] == 'ClipResize' and test[3]['size'] == 224
    assert train[6] == test[5] == dict(type='TokenizeCaptions', tokenizer='tok', max_length=32)
    assert train[6] is not test[5]  # no shared dicts between the two pipelines
    no_flip, _ = retrieval_pipelines(4, 64, 'tok', 8, flip=False)
    assert 'ClipFlip' not in [t['type'] for t in no_flip]
