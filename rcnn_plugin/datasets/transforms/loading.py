"""Load images as domains store them: 8/16-bit, grey, RGBA, TIFF, EXIF.

mmdet's ``LoadImageFromFile`` (mmcv ``imfrombytes``) decodes with
``IMREAD_COLOR``: a 16-bit PNG or TIFF is cut to 8 bits by dropping the low
byte without a word, and the intensity window cannot be chosen.
:class:`LoadDomainImageFromFile` decodes every bit of the file, then maps
intensities to ``uint8`` (or ``float32``) with a documented window.
"""
import io
from typing import BinaryIO, Optional, Sequence, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine import fileio
from PIL import Image

__all__ = [
    'LoadDomainImageFromFile', 'exif_orientation', 'image_orientation',
    'scale_intensity'
]

EXIF_FORMATS = ('JPEG', 'MPO', 'TIFF', 'WEBP')
# EXIF orientation -> (number of 90 degree counter-clockwise turns,
# flip left-right before turning), as in the TIFF/EXIF specification.
_ORIENT = {2: (0, True), 3: (2, False), 4: (2, True), 5: (1, True),
           6: (3, False), 7: (3, True), 8: (1, False)}


def exif_orientation(path: Union[str, BinaryIO]) -> int:
    """Read the EXIF orientation tag (1..8) of an image; 1 if absent.

    Args:
        path (str | BinaryIO): The image file, or its bytes as a file.

    Returns:
        int: The orientation, 1 meaning "as stored".
    """
    try:
        with Image.open(path) as img:
            return image_orientation(img)
    except (OSError, SyntaxError, ValueError):
        return 1


def image_orientation(img: Image.Image) -> int:
    """EXIF orientation (1..8) of an opened JPEG, TIFF or WebP; else 1.

    Args:
        img (PIL.Image.Image): An image opened with PIL (not decoded).

    Returns:
        int: The orientation, 1 meaning "as stored".
    """
    if img.format not in EXIF_FORMATS:
        return 1
    value = img.getexif().get(0x0112, 1)
    return value if value in range(1, 9) else 1


def scale_intensity(img: np.ndarray,
                    value_range: Optional[Sequence[float]] = None,
                    percentiles: Optional[Sequence[float]] = None,
                    to_float32: bool = False) -> np.ndarray:
    """Map intensities linearly from a window to ``[0, 255]``.

    The window is ``value_range`` if given, else the ``percentiles``
    (low, high) of this image if given, else the full range of the dtype
    (``0..65535`` for ``uint16``; ``uint8`` is returned unchanged).
    Values outside the window are clipped.

    Args:
        img (np.ndarray): Image, any dtype, shape (H, W) or (H, W, C).
        value_range (Sequence[float], optional): ``(low, high)`` window in
            the file's units. Defaults to None.
        percentiles (Sequence[float], optional): ``(low, high)``
            percentiles, e.g. ``(0.5, 99.5)``. Defaults to None.
        to_float32 (bool): Return ``float32`` in ``[0, 255]`` instead of
            rounded ``uint8``. Defaults to False.

    Returns:
        np.ndarray: The scaled image, same shape.
    """
    if value_range is None and percentiles is None and img.dtype == np.uint8:
        return img.astype(np.float32) if to_float32 else img
    if value_range is not None:
        low, high = (float(v) for v in value_range)
    elif percentiles is not None:
        low, high = (float(v) for v in np.percentile(img, percentiles))
    elif np.issubdtype(img.dtype, np.integer):
        low, high = 0.0, float(np.iinfo(img.dtype).max)
    else:
        low, high = float(img.min()), float(img.max())
    if not high > low:
        high = low + 1.0
    out = (img.astype(np.float32) - low) * (255.0 / (high - low))
    out = np.clip(out, 0, 255)
    return out if to_float32 else np.round(out).astype(np.uint8)


@TRANSFORMS.register_module()
class LoadDomainImageFromFile(BaseTransform):
    """Load an image with all its bits and a chosen intensity window.

    Handles 8-bit and 16-bit grey, RGB and RGBA PNG and TIFF, and JPEG. The
    output is a 3-channel BGR image (mmdet's convention; grey is repeated,
    alpha dropped) or, with ``color_type='grayscale'``, (H, W).
    Intensities are scaled by :func:`scale_intensity` with
    ``value_range`` / ``percentiles``; with neither, 16-bit images map
    ``0..65535`` to ``0..255`` and 8-bit images are unchanged.

    Required Keys: ``img_path``.
    Modified Keys: none.
    Added Keys: ``img``, ``img_shape``, ``ori_shape``, ``img_dtype``
    (the file's dtype, e.g. ``'uint16'``).

    Args:
        color_type (str): ``'color'`` or ``'grayscale'``.
            Defaults to 'color'.
        value_range (Sequence[float], optional): Fixed intensity window.
            Defaults to None.
        percentiles (Sequence[float], optional): Per-image percentile
            window, e.g. ``(1, 99)``. Defaults to None.
        to_float32 (bool): Output ``float32`` in ``[0, 255]``.
            Defaults to False.
        apply_exif (bool): Rotate/flip as the EXIF orientation says, like
            image viewers and labelling tools do. Defaults to True.
        ignore_empty (bool): Return None for a file that is missing or
            does not decode (the dataset then draws another image), as
            ``LoadImageFromFile`` does; else an error. Defaults to False.
        backend_args (dict, optional): mmengine file backend arguments,
            as ``LoadImageFromFile`` takes them, so the two swap by type
            alone. Defaults to None (local files).
    """

    def __init__(self,
                 color_type: str = 'color',
                 value_range: Optional[Sequence[float]] = None,
                 percentiles: Optional[Sequence[float]] = None,
                 to_float32: bool = False,
                 apply_exif: bool = True,
                 ignore_empty: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        if color_type not in ('color', 'grayscale'):
            raise ValueError("color_type must be 'color' or 'grayscale', "
                             f'got {color_type!r}')
        if value_range is not None and percentiles is not None:
            raise ValueError('give value_range or percentiles, not both')
        for name, win in (('value_range', value_range),
                          ('percentiles', percentiles)):
            if win is not None and (len(win) != 2 or not win[0] < win[1]):
                raise ValueError(f'{name} must be (low, high) with low < '
                                 f'high, got {win}')
        self.color_type = color_type
        self.value_range = value_range
        self.percentiles = percentiles
        self.to_float32 = to_float32
        self.apply_exif = apply_exif
        self.ignore_empty = ignore_empty
        self.backend_args = backend_args

    def _decode(self, path: str) -> np.ndarray:
        data = fileio.get(path, backend_args=self.backend_args)
        buf = np.frombuffer(data, np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
        if img is None:
            raise OSError(f'cannot decode image {path}')
        if self.apply_exif:
            turns, flip = _ORIENT.get(exif_orientation(io.BytesIO(data)),
                                      (0, False))
            if flip:
                img = img[:, ::-1]
            img = np.ascontiguousarray(np.rot90(img, turns))
        return img

    def _channels(self, img: np.ndarray) -> np.ndarray:
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[:, :, :3]  # BGRA -> BGR, alpha dropped
        if self.color_type == 'grayscale':
            if img.ndim == 3:
                weights = np.array([0.114, 0.587, 0.299])  # B, G, R
                img = (img.astype(np.float64) @ weights).astype(img.dtype)
            return img
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        return img

    def transform(self, results: dict) -> dict:
        """Load ``results['img_path']``.

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict | None: The dict with ``img``, ``img_shape``, ``ori_shape``
            and ``img_dtype`` added; None for a file that does not load,
            with ``ignore_empty``.
        """
        try:
            img = self._channels(self._decode(results['img_path']))
        except OSError:  # missing (FileNotFoundError) or undecodable
            if self.ignore_empty:
                return None
            raise
        results['img_dtype'] = str(img.dtype)
        img = scale_intensity(img, self.value_range, self.percentiles,
                              self.to_float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(color_type={self.color_type!r}, '
                f'value_range={self.value_range}, percentiles='
                f'{self.percentiles}, to_float32={self.to_float32}, '
                f'apply_exif={self.apply_exif}, ignore_empty='
                f'{self.ignore_empty}, backend_args={self.backend_args})')
