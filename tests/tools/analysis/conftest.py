"""The analysis tools are scripts, not a package: their folder goes on ``sys.path`` so that the tests import
them by name (``import caption_contrasts``)."""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
