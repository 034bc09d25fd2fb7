"""Image-text annotation dataset (CC3M and other image corpora in Singularity's JSON format)."""
from __future__ import annotations

import os
from typing import Any, Dict, List

from mmengine.dataset import BaseDataset
from mmengine.registry import DefaultScope

from svitt_mm.registry import DATASETS
from svitt_mm.utils.text import read_json_list

from .annotation_file import media_path, require_keys, text_list


@DATASETS.register_module()
class ImageTextDataset(BaseDataset):
    """Images paired with captions, for training next to video corpora.

    The annotation file is a JSON list of ``{"image": "rel/path.jpg", "caption": str | [str]}``, image
    paths relative to ``media_root``. Every (image, caption) pair is one item; its data info holds
    ``img_path`` (absolute; read by :class:`LoadImageAsClip`), ``captions`` (one str) and ``video_id``
    (index of the distinct image in order of first appearance, so captions of one image are positives).
    Mix with video datasets in an MMEngine ``ConcatDataset`` and batch with
    :class:`SourceHomogeneousBatchSampler`; ``video_id`` values then overlap between the parts, which is
    harmless because a batch never holds two sources.

    Args:
        ann_file: annotation JSON (joined with ``data_root`` when relative).
        media_root: folder the ``image`` paths are relative to (joined with ``data_root`` when relative).
        pipeline: transforms applied to each data info.
        check_media: check that every image file exists when the dataset is built.
        **kwargs: other :class:`mmengine.dataset.BaseDataset` arguments.

    Raises (when the dataset is built):
        FileNotFoundError: missing annotation file or (with ``check_media``) image files (all counted,
            the first listed).
        ValueError: malformed JSON, an entry without ``image``/``caption``, a path outside ``media_root``
            or an empty caption; the message names the file, the entry index and the key.
    """

    def __init__(self, ann_file: str, media_root: str, pipeline: List = (), check_media: bool = True,
                 **kwargs: Any) -> None:
        data_root = kwargs.get('data_root') or ''
        self.media_root = os.path.abspath(
            media_root if os.path.isabs(media_root) or not data_root
            else os.path.join(data_root, media_root))
        self.check_media = check_media
        scope = None if DefaultScope.get_current_instance() is not None else 'svitt_mm'
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(ann_file=ann_file, pipeline=list(pipeline), **kwargs)

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
        if self.check_media:
            missing = [path for path in image_ids if not os.path.isfile(path)]
            if missing:
                raise FileNotFoundError(f'{self.ann_file}: {len(missing)} of {len(image_ids)} image files '
                                        f'not found (check media_root {self.media_root}), e.g. {missing[0]}')
        return infos
