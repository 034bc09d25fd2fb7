"""LoadImageAsClip: an image file becomes a clip of identical RGB frames."""
import mmcv
import numpy as np
import pytest

from svitt_mm.datasets.transforms import ImageDecodeError, LoadImageAsClip, PackVideoTextInputs


def write_image(path, height=5, width=7):
    rgb = np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)
    mmcv.imwrite(rgb[..., ::-1], str(path))  # mmcv writes BGR; png is lossless
    return rgb


@pytest.mark.parametrize('num_frames', [1, 3])
def test_reads_rgb_frames(tmp_path, num_frames):
    rgb = write_image(tmp_path / 'a.png')
    results = LoadImageAsClip(num_frames)(dict(img_path=str(tmp_path / 'a.png')))
    assert results['imgs'].shape == (num_frames, 5, 7, 3)
    for frame in results['imgs']:
        np.testing.assert_array_equal(frame, rgb)
    assert (results['num_clips'], results['clip_len'], results['img_shape']) == (1, num_frames, (5, 7))
    packed = PackVideoTextInputs()(dict(results, text_ids=np.zeros((1, 4)), text_mask=np.ones((1, 4)),
                                        captions=['x'], video_id=0, sample_idx=0))
    assert tuple(packed['inputs'].shape) == (1, num_frames, 3, 5, 7)
    assert packed['inputs'][0, 0, :, 1, 2].tolist() == rgb[1, 2].tolist()


def test_errors_name_the_file(tmp_path):
    with pytest.raises(ImageDecodeError, match='missing.png: file not found'):
        LoadImageAsClip()(dict(img_path=str(tmp_path / 'missing.png')))
    (tmp_path / 'garbage.jpg').write_bytes(b'not an image')
    with pytest.raises(ImageDecodeError, match='garbage.jpg: not a decodable image'):
        LoadImageAsClip()(dict(img_path=str(tmp_path / 'garbage.jpg')))
    with pytest.raises(ValueError, match='num_frames'):
        LoadImageAsClip(0)
