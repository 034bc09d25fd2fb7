"""Image-text annotation dataset (CC3M and other image corpora in Singularity's JSON format)."""
from __future__ import annotations

from typing import Dict, List

from svitt_mm.registry import DATASETS
from svitt_mm.utils.text import read_json_list

from .annotation_file import media_path, require_keys, text_list
from .media_text_dataset import MediaTextDataset
from .transforms.image_loading import ImageDecodeError, read_image


@DATASETS.register_module()
class ImageTextDataset(MediaTextDataset):
    """Images paired with captions, for training next to video corpora.

    The annotation file is a JSON list of ``{"image": "rel/path.jpg", "caption": str | [str]}``, image
    paths relative to ``media_root``. Every (image, caption) pair is one item; its data info holds
    ``img_path`` (absolute; read by :class:`LoadImageAsClip`), ``captions`` (one str) and ``video_id``
    (index of the distinct image in order of first appearance, so captions of one image are positives).
    Mix with video datasets in an MMEngine ``ConcatDataset`` and batch with
    :class:`SourceHomogeneousBatchSampler`; ``video_id`` values then overlap between the parts, which is
    harmless because a batch never holds two sources.

    Images that cannot be read (:class:`ImageDecodeError`) are handled by ``on_broken_media`` as
    :class:`MediaTextDataset` describes: replaced in training (``'skip'``), listed at build (``'raise'``)
    or dropped (``'exclude'``).

    Args:
        ann_file: annotation JSON (joined with ``data_root`` when relative).
        media_root: folder the ``image`` paths are relative to (joined with ``data_root`` when relative;
            the same as ``data_prefix=dict(img_path=...)``).
        pipeline: transforms applied to each data info.
        check_media, on_broken_media, max_broken_retries, data_prefix: see :class:`MediaTextDataset`.
        **kwargs: other :class:`mmengine.dataset.BaseDataset` arguments.

    Raises (when the dataset is built):
        FileNotFoundError: missing annotation file or (with ``check_media``) image files (all listed).
        ValueError: malformed JSON, an entry without ``image``/``caption``, a path outside ``media_root``
            or an empty caption; the message names the file, the entry index and the key.
        BrokenMediaError: (``on_broken_media='raise'`` with ``check_media``) images that cannot be
            decoded, all listed.
    """

    media_path_key = 'img_path'
    media_kind = 'image'
    media_errors = (ImageDecodeError,)

    def check_media_file(self, path: str) -> None:
        """Raise :class:`ImageDecodeError` if ``path`` is not a readable image."""
        read_image(path)

    def load_data_list(self) -> List[Dict]:
        """Parse and validate the annotation file into data infos (see the class docstring)."""
        image_ids: Dict[str, int] = {}
        infos = []
        for index, entry in enumerate(read_json_list(self.ann_file, '{"image", "caption"}')):
            entry = require_keys(self.ann_file, index, entry, ('image', 'caption'))
            path = media_path(self.ann_file, index, 'image', entry['image'], self.media_root)
            image_id = image_ids.setdefault(path, len(image_ids))
            infos.extend(dict(img_path=path, captions=[caption], video_id=image_id)
                         for caption in text_list(self.ann_file, index, 'caption', entry['caption']))
        return infos
