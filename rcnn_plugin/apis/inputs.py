"""Inference inputs: an image, a folder, a glob or a video file.

Images are read with OpenCV (BGR, ``uint8``, ``(H, W, 3)``), or with the
config's ``LoadDomainImageFromFile`` where its test pipeline uses it
(:func:`image_reader`). A file that does not decode is logged and reported
as ``None`` so the caller can skip and count it; nothing is dropped
silently. :func:`inference_pipeline` is a test pipeline for such loaded
images.
"""
import functools
import glob
import os
import os.path as osp
from typing import (
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import cv2
import numpy as np
from mmengine.dataset import Compose
from mmengine.logging import print_log

from rcnn_plugin.utils.config_types import type_name

# what OpenCV's imread decodes, as mmcv's cv2 backend reads it
IMAGE_EXTS = ('.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.bmp', '.dib',
              '.tif', '.tiff', '.webp', '.jp2', '.pbm', '.pgm', '.ppm',
              '.pnm')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv')
# what OpenCV writes a colour image to (.jfif has no writer, .pgm / .pbm
# take gray only, .jp2 fails on small images)
COLOR_WRITE_EXTS = ('.jpg', '.jpeg', '.jpe', '.png', '.bmp', '.dib', '.tif',
                    '.tiff', '.webp', '.ppm', '.pnm')
# rcnn_plugin's loader of 16-bit images with an intensity window.
DOMAIN_LOADER = 'LoadDomainImageFromFile'


def is_video(source: str) -> bool:
    """Whether ``source`` is a video file (by extension).

    Args:
        source (str): Path given by the user.

    Returns:
        bool: True for mp4 / avi / mov / mkv.
    """
    return source.lower().endswith(VIDEO_EXTS)


def collect_images(source: str) -> List[str]:
    """Image paths for an image file, a folder (not recursive) or a glob.

    Args:
        source (str): A path or a glob pattern (``data/*.jpg``).

    Returns:
        List[str]: Sorted paths.
    """
    if osp.isdir(source):
        found = [osp.join(source, f) for f in os.listdir(source)
                 if not osp.isdir(osp.join(source, f))]
    elif osp.isfile(source):
        found = [source]
    else:
        found = [p for p in glob.glob(source, recursive=True)
                 if not osp.isdir(p)]
    paths = [p for p in found if p == source or
             p.lower().endswith(IMAGE_EXTS)]  # a file named is read
    other = sorted(set(found) - set(paths))
    if paths and other:
        print_log(f'{source}: left out {len(other)} file(s) without an '
                  f'image extension (e.g. {osp.basename(other[0])}); '
                  f'images are {"/".join(IMAGE_EXTS)}', 'current')
    if not paths:
        raise FileNotFoundError(
            f'no images found for {source!r} (expected an image, a folder '
            f'of {"/".join(IMAGE_EXTS)} files, a glob, or a video with '
            f'extension {"/".join(VIDEO_EXTS)})')
    return sorted(paths)


def output_names(paths: Sequence[str], stem: bool = False) -> List[str]:
    """A name per input path for the files written from it, unique.

    The base name (``stem``: without its extension) where the inputs' base
    names differ; else the path relative to the inputs' common folder, so
    that ``a/x.jpg`` and ``b/x.jpg`` (a recursive glob) or ``x.jpg`` and
    ``x.png`` (``stem``) do not overwrite each other's outputs.

    Args:
        paths (Sequence[str]): Distinct input paths.
        stem (bool): Names without the extension. Defaults to False.

    Returns:
        list[str]: One name per path, in order (``/``-separated).
    """
    base = [osp.basename(p) for p in paths]
    names = [osp.splitext(b)[0] for b in base] if stem else base
    if len(set(names)) == len(names):
        return names
    full = [osp.abspath(p) for p in paths]
    root = osp.commonpath([osp.dirname(p) for p in full])
    rel = [osp.relpath(p, root).replace(os.sep, '/') for p in full]
    if not stem:
        return rel
    return [f"{r}_{e.lstrip('.')}" if e else r
            for r, e in map(osp.splitext, rel)]


def vis_names(names: Sequence[str]) -> Dict[str, str]:
    """A file name per output name for a colour drawing, unique.

    The name itself where OpenCV writes a colour image to its extension
    (``COLOR_WRITE_EXTS``, with a writer in this build); else the name
    plus ``.png`` (``x.jfif.png``), or ``_1.png``, ``_2.png`` ... where an
    input already has that name.

    Args:
        names (Sequence[str]): Distinct names, as :func:`output_names`.

    Returns:
        dict[str, str]: Output name to drawing file name.
    """
    def writable(name):
        return (name.lower().endswith(COLOR_WRITE_EXTS)
                and cv2.haveImageWriter(name))

    out = {name: name for name in names if writable(name)}
    taken = set(out)
    for name in names:
        if name in out:
            continue
        new, i = f'{name}.png', 0
        while new in taken:
            i += 1
            new = f'{name}_{i}.png'
        out[name] = new
        taken.add(new)
    return out


def read_image(path: str, color_type: str = 'color',
               backend: str = 'cv2') -> Optional[np.ndarray]:
    """Read an image; None (and a logged warning) if it does not decode.

    Args:
        path (str): Image file.
        color_type (str): mmcv's flag, as ``LoadImageFromFile`` takes it
            (``'color_ignore_orientation'`` leaves an EXIF rotation
            unapplied). Defaults to 'color' (BGR, EXIF rotation applied).
        backend (str): mmcv's decode backend. Defaults to 'cv2'.

    Returns:
        np.ndarray, optional: The image (``(H, W, 3)`` uint8 BGR by
        default) or None.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:  # gone, a dangling link, no permission
        print_log(f'skipping {path}: {exc.strerror or exc}', 'current',
                  level=30)
        return None
    try:
        if not data.size:
            image = None
        elif (color_type, backend) == ('color', 'cv2'):
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        else:  # as the config's loader decodes (mmcv.imfrombytes)
            import mmcv
            image = mmcv.imfrombytes(data.tobytes(), flag=color_type,
                                     backend=backend)
    except Exception:  # noqa: BLE001  (any backend's decode failure)
        image = None
    if image is None or image.size == 0:
        print_log(f'skipping {path}: not a decodable image', 'current',
                  level=30)
        return None
    return image


def _decoder(color_type: str, backend: str) -> Callable:
    """:func:`read_image` with a loader's decode options (itself for the
    defaults), so inference sees the pixels training saw."""
    if (color_type, backend) == ('color', 'cv2'):
        return read_image
    return functools.partial(read_image, color_type=color_type,
                             backend=backend)


def inference_pipeline(pipeline: Compose) -> Compose:
    """A dataset's test pipeline that starts from a loaded BGR image.

    ``LoadImageFromFile`` (or the ``InferencerLoader`` that mmdet's
    ``DetInferencer`` writes into a config) becomes mmdet's
    ``LoadImageFromNDArray`` with the loader's options, and so does
    rcnn_plugin's ``LoadDomainImageFromFile`` (whose arrays
    :func:`image_reader` reads);
    ``LoadAnnotations`` steps are dropped (an image has no annotations).

    Args:
        pipeline (Compose): The built test pipeline of a dataset.

    Returns:
        Compose: The pipeline for ``dict(img=BGR array)`` inputs.

    Raises:
        ValueError: The pipeline does not start by loading the image.
    """
    from mmdet.datasets.transforms import LoadImageFromNDArray
    names = [type(step).__name__ for step in pipeline.transforms]
    if not names or not (names[0].startswith('LoadImage') or names[0] in
                         ('InferencerLoader', DOMAIN_LOADER)):
        raise ValueError('the test pipeline must start by loading the '
                         f'image (got {names[:3]})')
    steps = []
    for step in pipeline.transforms:
        name = type(step).__name__
        if name in ('LoadImageFromFile', DOMAIN_LOADER):
            step = LoadImageFromNDArray(to_float32=step.to_float32)
        elif name == 'InferencerLoader':  # its array branch
            step = step.from_ndarray
        elif name.startswith('LoadAnnotations'):
            continue
        steps.append(step)
    return Compose(steps)


def image_reader(loader: Union[dict, Callable, None]
                 ) -> Callable[[str], Optional[np.ndarray]]:
    """How a test pipeline's first step reads an image file.

    rcnn_plugin's ``LoadDomainImageFromFile`` (16-bit images, an intensity
    window) reads the files itself, so that inference sees the
    intensities the model was trained and tested on; any other loader
    means :func:`read_image` (8-bit BGR, what mmdet's loader gives).

    Args:
        loader (dict | Callable | None): The first step of a test pipeline,
            as a config or built.

    Returns:
        Callable: Path -> image, or None (logged) if it does not decode.
    """
    if isinstance(loader, dict):
        kwargs = dict(loader)
        if not is_domain_loader(kwargs.pop('type', None)):
            return _decoder(kwargs.get('color_type', 'color'),
                            kwargs.get('imdecode_backend', 'cv2'))
        from rcnn_plugin.datasets.transforms.loading import (
            LoadDomainImageFromFile,
        )
        loader = LoadDomainImageFromFile(**kwargs)
    elif not is_domain_loader(type(loader)):
        return _decoder(getattr(loader, 'color_type', 'color'),
                        getattr(loader, 'imdecode_backend', 'cv2'))

    def read(path: str) -> Optional[np.ndarray]:
        try:
            results = loader(dict(img_path=path))
        except OSError as exc:  # missing or not decodable
            print_log(f'skipping {path}: {exc}', 'current', level=30)
            return None
        if results is None:  # the loader's ignore_empty
            print_log(f'skipping {path}: the loader returned nothing',
                      'current', level=30)
            return None
        return results['img']
    return read


def is_domain_loader(step_type) -> bool:
    """Whether a pipeline step's ``type`` is ``LoadDomainImageFromFile``."""
    return type_name(step_type) == DOMAIN_LOADER


def split_loaders(cfg, split: str) -> List[Optional[dict]]:
    """The first pipeline step of each innermost dataset of a split, in
    order (one per dataset of a ``ConcatDataset``; None where a dataset
    has no pipeline)."""
    from rcnn_plugin.datasets.config_tree import iter_dataset_cfgs
    loader = cfg.get(f'{split}_dataloader') or {}
    return [(leaf.get('pipeline') or [None])[0]
            for leaf, _ in iter_dataset_cfgs(loader.get('dataset'), '')]


def split_loader(cfg, split: str) -> Optional[dict]:
    """The first pipeline step of a split's innermost dataset, as a config.

    Wrappers (``ClassSubsetDataset``, ``MultiImageMixDataset``, ...) are
    looked through; where a ``ConcatDataset``'s datasets load images
    differently, the first one's loader is returned with a warning.

    Args:
        cfg (Config): The full config.
        split (str): ``'train'``, ``'val'`` or ``'test'``.

    Returns:
        dict, optional: The step, or None without that split or pipeline.
    """
    steps = split_loaders(cfg, split)
    if any(step != steps[0] for step in steps[1:]):
        print_log(f'the {split} datasets load images differently; their '
                  f'images are all read as the first one does: {steps[0]}',
                  'current', level=30)
    return steps[0] if steps else None


def split_reader(cfg, split: str) -> Callable[[str], Optional[np.ndarray]]:
    """:func:`image_reader` of a split's loader (:func:`split_loader`).

    Args:
        cfg (Config): The full config.
        split (str): ``'train'``, ``'val'`` or ``'test'``.

    Returns:
        Callable: Path -> image, or None (logged) if it does not decode.
    """
    return image_reader(split_loader(cfg, split))


class VideoReader:
    """Frames of a video file, with its fps and size.

    Args:
        path (str): Video file (mp4 / avi / ...).
        max_failures (int): Undecodable frames in a row after which the
            video is taken to end. Defaults to 10.
    """

    def __init__(self, path: str, max_failures: int = 10) -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'video not found: {path}')
        self.path = path
        self.max_failures = max_failures
        self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            raise ValueError(f'OpenCV cannot open the video {path}')
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.num_frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.unread_at_end = 0  # set by frames()
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def frames(self) -> Iterator[Tuple[int, Optional[np.ndarray]]]:
        """Yield ``(index, frame)``; frame is None for a corrupt frame.

        A read that fails is held until the next frame decodes: then it was
        a corrupt frame inside the video, logged and yielded as None. Reads
        that fail at the end (after the container's frame count, which is
        an estimate, or ``max_failures`` in a row) end the video and are
        not frames: they are counted in :attr:`unread_at_end` and logged
        once with the count the container reported.

        Returns:
            Iterator[Tuple[int, np.ndarray | None]]: Frames in order.
        """
        index, failed = 0, []
        self.unread_at_end = 0
        while True:
            ok, frame = self.cap.read()
            if ok and frame is not None:
                for corrupt in failed:
                    print_log(f'{self.path}: frame {corrupt} does not '
                              'decode, skipped', 'current', level=30)
                    yield corrupt, None
                failed = []
                yield index, frame
            elif (0 < self.num_frames and index < self.num_frames
                  and len(failed) < self.max_failures):
                failed.append(index)
            else:
                break
            index += 1
        self.cap.release()
        self.unread_at_end = len(failed)
        if failed:
            which = (f'frame {failed[0]} does' if len(failed) == 1 else
                     f'frames {failed[0]} to {failed[-1]} do')
            print_log(f'{self.path}: the container reports '
                      f'{self.num_frames} frames; {which} not decode and '
                      'nothing after them does, so the video is taken to '
                      'end at frame '
                      f'{failed[0]} (a truncated file, or a frame count '
                      'that is only an estimate)', 'current', level=30)
