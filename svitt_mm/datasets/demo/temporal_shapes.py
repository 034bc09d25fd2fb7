"""Temporal shapes: a tiny video-text dataset that cannot be solved without frame order.

Every video shows one coloured shape on a tinted background doing one event. Captions:

* ``"a {color} {shape} moves left"`` / ``moves right`` / ``moves up`` / ``moves down``
* ``"a {color} {shape} grows"`` / ``shrinks``
* with ``color_changes=True`` also ``"a {shape} changes from {color} to {other color}"``

with shapes ``circle``, ``square``, ``triangle`` and colours ``red``, ``green``, ``blue``, ``yellow``
(72 captions; 108 with colour changes). Each event's time-reversal is another event (left <-> right,
up <-> down, grows <-> shrinks, X to Y <-> Y to X), and the random parameters are drawn so that a
reversed clip is an ordinary clip of the reversed event. A model blind to frame order therefore sees
the same *set* of frames for both events of a pair: it can tell {left, right} from {up, down} from
{grows, shrinks} (and the colours and shapes), never which of a pair happened. Start position,
distance travelled (speed), size, colours' start/end and the background tint and gradient are
random per video, so memorising frames does not help.

Splits: ``test`` has one video per caption (captions unique, text-to-video R@1 chance =
1 / #captions); ``train`` has ``videos_per_caption`` videos per caption. Videos are MPEG-4 part 2 by
default (written with PyAV; H.264 on request), 64 x 64, 16 frames at 8 fps. Everything is drawn from
``numpy.random.default_rng`` seeded by ``(seed, split, video index)``, so a seed gives the same frames
on every machine.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np

SHAPES = ('circle', 'square', 'triangle')
COLORS: Dict[str, Tuple[int, int, int]] = {
    'red': (220, 45, 45), 'green': (40, 185, 70), 'blue': (55, 85, 235), 'yellow': (240, 215, 35)}
MOTIONS = ('moves left', 'moves right', 'moves up', 'moves down', 'grows', 'shrinks')
REVERSED_MOTION = {'moves left': 'moves right', 'moves right': 'moves left', 'moves up': 'moves down',
                   'moves down': 'moves up', 'grows': 'shrinks', 'shrinks': 'grows', 'changes': 'changes'}
MANIFEST = 'manifest.json'
FORMAT_VERSION = 1
TRIANGLE_SCALE = 1.2  # triangle circumradius / r, so that the three shapes look about equally big


@dataclass(frozen=True)
class Event:
    """What a caption says: ``shape`` does ``motion``; ``colors`` = (start colour, end colour)."""

    shape: str
    motion: str
    colors: Tuple[str, str]

    @property
    def caption(self) -> str:
        if self.motion == 'changes':
            return f'a {self.shape} changes from {self.colors[0]} to {self.colors[1]}'
        return f'a {self.colors[0]} {self.shape} {self.motion}'

    def reversed(self) -> 'Event':
        """The event whose clips are this event's clips played backwards."""
        return Event(self.shape, REVERSED_MOTION[self.motion], self.colors[::-1])


@dataclass(frozen=True)
class ClipSpec:
    """Everything :func:`render_clip` draws. Pairs are (first frame, last frame) values, linearly
    interpolated in between; ``radius`` is the shape's size (circle radius)."""

    shape: str
    colors: Tuple[Tuple[int, int, int], Tuple[int, int, int]]
    centers: Tuple[Tuple[float, float], Tuple[float, float]]
    radii: Tuple[float, float]
    tint: Tuple[float, float, float]
    gradient: Tuple[float, float]

    def reversed(self) -> 'ClipSpec':
        """The spec whose clip is this clip played backwards."""
        return ClipSpec(self.shape, self.colors[::-1], self.centers[::-1], self.radii[::-1], self.tint,
                        self.gradient)


def all_events(color_changes: bool = False) -> List[Event]:
    """Every event, in a fixed order (shape, then colour, then motion; colour changes last)."""
    events = [Event(shape, motion, (color, color))
              for shape in SHAPES for color in COLORS for motion in MOTIONS]
    if color_changes:
        events += [Event(shape, 'changes', (first, second))
                   for shape in SHAPES for first in COLORS for second in COLORS if first != second]
    return events


def _signed_distance_circle(dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    return np.sqrt(dx * dx + dy * dy) - radius


def _signed_distance_square(dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    return np.maximum(np.abs(dx), np.abs(dy)) - radius * np.sqrt(np.pi) / 2  # area of the circle


def _signed_distance_triangle(dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    # Equilateral, apex up (image y grows downwards), centroid at the centre; inradius = R / 2.
    edges = np.maximum(np.maximum(dy, 0.866025 * dx - 0.5 * dy), -0.866025 * dx - 0.5 * dy)
    return edges - TRIANGLE_SCALE * radius / 2


SIGNED_DISTANCE: Dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    'circle': _signed_distance_circle, 'square': _signed_distance_square,
    'triangle': _signed_distance_triangle}


def _lerp(pair: Tuple, t: int, num_frames: int) -> np.ndarray:
    # Symmetric in (start, end) <-> (end, start) with t <-> T-1-t, bit for bit (IEEE + and * commute),
    # so a reversed spec renders exactly the reversed frames.
    start, end = np.asarray(pair[0], np.float64), np.asarray(pair[1], np.float64)
    return (start * (num_frames - 1 - t) + end * t) / (num_frames - 1)


def render_clip(spec: ClipSpec, num_frames: int = 16, size: int = 64) -> np.ndarray:
    """Draw the clip: uint8 RGB ``[num_frames, size, size, 3]`` (anti-aliased edges)."""
    if num_frames < 2:
        raise ValueError(f'render_clip: num_frames must be >= 2, got {num_frames}')
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    background = (np.asarray(spec.tint)[None, None] + spec.gradient[0] * (xs / size - 0.5)[..., None]
                  + spec.gradient[1] * (ys / size - 0.5)[..., None])
    frames = np.empty((num_frames, size, size, 3), np.float64)
    for t in range(num_frames):
        cx, cy = _lerp(spec.centers, t, num_frames)
        radius = float(_lerp((spec.radii[0], spec.radii[1]), t, num_frames))
        cover = np.clip(0.5 - SIGNED_DISTANCE[spec.shape](xs - cx, ys - cy, radius), 0.0, 1.0)[..., None]
        frames[t] = background * (1 - cover) + _lerp(spec.colors, t, num_frames) * cover
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def _extent(radius: float) -> float:
    """Half-size of the box that holds any shape of this radius, plus half a pixel."""
    return TRIANGLE_SCALE * radius + 0.5


def _sample_move(axis: int, sign: int) -> Callable:
    """Sampler for a straight move along ``axis`` (0: x, 1: y) in direction ``sign``. The two end
    points are drawn without regard to direction, so the opposite move's sampler yields the same
    clips reversed."""
    def sample(rng: np.random.Generator, size: int):
        radius = rng.uniform(5.0, 9.0) * size / 64
        lo_limit, hi_limit = _extent(radius), size - _extent(radius)
        distance = rng.uniform(0.35, 0.65) * (hi_limit - lo_limit)
        lo = rng.uniform(lo_limit, hi_limit - distance)
        across = rng.uniform(lo_limit, hi_limit)
        start, end = (lo, lo + distance) if sign > 0 else (lo + distance, lo)
        centers = ((start, across), (end, across)) if axis == 0 else ((across, start), (across, end))
        return centers, (radius, radius)
    return sample


def _sample_resize(grow: bool) -> Callable:
    def sample(rng: np.random.Generator, size: int):
        small = rng.uniform(4.0, 7.0) * size / 64
        big = min(small * rng.uniform(1.8, 2.6), size / 4)
        center = tuple(rng.uniform(_extent(big), size - _extent(big), 2))
        return (center, center), ((small, big) if grow else (big, small))
    return sample


def _sample_still(rng: np.random.Generator, size: int):
    radius = rng.uniform(6.0, 12.0) * size / 64
    center = tuple(rng.uniform(_extent(radius), size - _extent(radius), 2))
    return (center, center), (radius, radius)


GEOMETRY_SAMPLERS: Dict[str, Callable] = {
    'moves left': _sample_move(0, -1), 'moves right': _sample_move(0, 1),
    'moves up': _sample_move(1, -1), 'moves down': _sample_move(1, 1),
    'grows': _sample_resize(True), 'shrinks': _sample_resize(False), 'changes': _sample_still}


def sample_clip_spec(event: Event, rng: np.random.Generator, size: int = 64) -> ClipSpec:
    """Random geometry, colours' jitter and background for one clip of ``event``."""
    centers, radii = GEOMETRY_SAMPLERS[event.motion](rng, size)
    # one jitter per colour name, drawn in name order, so that X-to-Y and Y-to-X use the same draws
    jittered = {name: tuple(int(c) for c in np.clip(np.asarray(COLORS[name]) + rng.integers(-15, 16, 3),
                                                    0, 255)) for name in sorted(set(event.colors))}
    colors = (jittered[event.colors[0]], jittered[event.colors[1]])
    tint = tuple(float(v) for v in rng.uniform(85, 150) + rng.uniform(-12, 12, 3))
    gradient = tuple(float(v) for v in rng.uniform(-25, 25, 2))
    return ClipSpec(event.shape, colors, tuple(tuple(float(v) for v in c) for c in centers),
                    tuple(float(r) for r in radii), tint, gradient)


ENCODER_OPTIONS: Dict[str, Dict[str, str]] = {
    'libx264': {'crf': '12', 'preset': 'veryfast'},
    'mpeg4': {'b': '2000000'},
}


def write_video(path: str, frames: np.ndarray, fps: int = 8, codec: str = 'mpeg4') -> None:
    """Encode uint8 RGB ``[T, H, W, 3]`` (even H and W) to ``path`` with PyAV (yuv420p).

    ``codec``: ``'mpeg4'`` (MPEG-4 part 2; the same frames always give the same bytes) or ``'libx264'``
    (H.264; its output varies slightly from run to run here, even single-threaded), both near-lossless.
    """
    import av

    if codec not in ENCODER_OPTIONS:
        raise ValueError(f'write_video: codec must be one of {sorted(ENCODER_OPTIONS)}, got {codec!r}')
    with av.open(path, 'w') as container:
        stream = container.add_stream(codec, rate=fps, options=ENCODER_OPTIONS[codec])
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = 'yuv420p'
        stream.codec_context.thread_count = 1
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())


def _is_complete(out_dir: str, params: Dict) -> bool:
    manifest_path = os.path.join(out_dir, MANIFEST)
    if not os.path.isfile(manifest_path):
        return False
    with open(manifest_path, encoding='utf-8') as f:
        manifest = json.load(f)
    if manifest.get('params') != params:
        return False
    return all(os.path.isfile(os.path.join(out_dir, 'videos', name)) for name in manifest['videos'])


# --- temporal QA split: one question per video whose answer needs the frame order -----------------
QA_FILES = dict(qa_train='qa_train.json', qa_test='qa_test.json', answer_list='answer_list.json')


def qa_of_event(event: Event) -> Tuple[str, str, str]:
    """``(question, answer, type)`` about ``event``; the answer flips when the clip is reversed.

    * moves: ``"which way does the red circle move?"`` -> ``left`` / ``right`` / ``up`` / ``down``
      (type ``direction``)
    * grows / shrinks: ``"does the red circle grow or shrink?"`` -> ``grow`` / ``shrink`` (``size``)
    * colour changes: ``"what color does the circle turn?"`` -> the end colour (``color``)
    """
    if event.motion.startswith('moves '):
        return (f'which way does the {event.colors[0]} {event.shape} move?', event.motion.split()[1],
                'direction')
    if event.motion in ('grows', 'shrinks'):
        return (f'does the {event.colors[0]} {event.shape} grow or shrink?', event.motion[:-1], 'size')
    return f'what color does the {event.shape} turn?', event.colors[1], 'color'


def qa_answer_list(color_changes: bool = False) -> List[str]:
    """Every answer of the QA split, in a fixed order."""
    return list(dict.fromkeys(qa_of_event(event)[1] for event in all_events(color_changes)))


def _write_json_if_changed(path: str, content: object) -> None:
    text = json.dumps(content, indent=0)
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def write_temporal_qa(out_dir: str, videos_per_caption: int = 8,
                      color_changes: bool = False) -> Dict[str, str]:
    """Write the QA annotations of a temporal-shapes build in ``out_dir`` (VideoQADataset's format):
    ``qa_train.json`` / ``qa_test.json`` (one question per video, ``question_id`` = the video's index in
    its split, ``type`` = ``direction`` / ``size`` / ``color``) and ``answer_list.json``. Files whose
    content is already right are not touched. Returns their absolute paths
    (``qa_train``, ``qa_test``, ``answer_list``)."""
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    events = all_events(color_changes)
    paths = {key: os.path.join(out_dir, name) for key, name in QA_FILES.items()}
    for split, per_caption in (('train', videos_per_caption), ('test', 1)):
        entries = []
        for index in range(len(events) * per_caption):
            question, answer, question_type = qa_of_event(events[index // per_caption])
            entries.append(dict(video=f'{split}/{index:05d}.mp4', question=question, answer=answer,
                                question_id=index, type=question_type))
        _write_json_if_changed(paths[f'qa_{split}'], entries)
    _write_json_if_changed(paths['answer_list'], qa_answer_list(color_changes))
    return paths


def build_temporal_shapes(out_dir: str, seed: int = 0, videos_per_caption: int = 8, num_frames: int = 16,
                          size: int = 64, fps: int = 8, color_changes: bool = False,
                          codec: str = 'mpeg4') -> Dict[str, str]:
    """Write the dataset under ``out_dir`` (``videos/{train,test}/*.mp4``, ``train.json``,
    ``test.json`` in VideoTextDataset's format, and a manifest) and its QA split
    (:func:`write_temporal_qa`). Returns immediately when ``out_dir`` already holds a complete build with
    the same parameters.

    Returns:
        ``dict(train=<train.json>, test=<test.json>, media_root=<out_dir>/videos, qa_train=<qa_train.json>,
        qa_test=<qa_test.json>, answer_list=<answer_list.json>)`` (absolute paths).
    """
    if videos_per_caption < 1 or size % 2 or size < 16 or num_frames < 2:
        raise ValueError(f'build_temporal_shapes: need videos_per_caption >= 1, an even size >= 16 and '
                         f'num_frames >= 2; got videos_per_caption={videos_per_caption}, size={size}, '
                         f'num_frames={num_frames}')
    out_dir = os.path.abspath(out_dir)
    params = dict(format=FORMAT_VERSION, seed=seed, videos_per_caption=videos_per_caption,
                  num_frames=num_frames, size=size, fps=fps, color_changes=color_changes, codec=codec)
    paths = dict(train=os.path.join(out_dir, 'train.json'), test=os.path.join(out_dir, 'test.json'),
                 media_root=os.path.join(out_dir, 'videos'))
    paths.update(write_temporal_qa(out_dir, videos_per_caption, color_changes))
    if _is_complete(out_dir, params):
        return paths
    manifest_path = os.path.join(out_dir, MANIFEST)
    if os.path.exists(manifest_path):  # a rebuild that stops half-way must not look complete
        os.remove(manifest_path)
    events = all_events(color_changes)
    videos: List[str] = []
    for split_code, (split, per_caption) in enumerate((('train', videos_per_caption), ('test', 1))):
        os.makedirs(os.path.join(paths['media_root'], split), exist_ok=True)
        annotations = []
        for index in range(len(events) * per_caption):
            event = events[index // per_caption]
            rng = np.random.default_rng([seed, split_code, index])
            name = f'{split}/{index:05d}.mp4'
            frames = render_clip(sample_clip_spec(event, rng, size), num_frames, size)
            write_video(os.path.join(paths['media_root'], name), frames, fps, codec)
            annotations.append(dict(video=name, caption=event.caption))
            videos.append(name)
        with open(paths[split], 'w', encoding='utf-8') as f:
            json.dump(annotations, f, indent=0)
    manifest = dict(params=params, videos=videos, events=[asdict(e) for e in events])
    with open(manifest_path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(manifest, f)
    os.replace(manifest_path + '.tmp', manifest_path)
    return paths
