from svitt_mm.engine.loops.retrieval_loop import k_test_warning


def test_k_test_within_the_test_set_is_silent():
    assert k_test_warning(4, num_videos=4, num_texts=10) is None


def test_k_test_beyond_the_test_set_is_clamped_with_a_warning():
    assert k_test_warning(128, num_videos=5, num_texts=20) == (
        'k_test=128 is larger than the test set (5 videos, 20 texts); clamped to 5 video candidates per '
        'text and 20 text candidates per video (every candidate is re-ranked)')
    assert 'clamped to 5 video candidates per text and 6 text' in k_test_warning(6, 5, 20)
