"""Load images as domains store them: 8/16-bit, grey, RGBA, TIFF, EXIF.

mmdet's ``LoadImageFromFile`` (mmcv ``imfrombytes``) decodes with
``IMREAD_COLOR``: a 16-bit PNG or TIFF is cut to 8 bits by dropping the low
byte without a word, and the intensity window cannot be chosen.
:class:`LoadDomainImageFromFile` decodes every bit of the file, then maps
intensities to ``uint8`` (or ``float32``) with a documented window.
"""
import functools
import io
import os
import struct
from typing import BinaryIO, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine import fileio
from PIL import Image

__all__ = [
    'LoadDomainImageFromFile', 'cv2_applies_orientation', 'displayed_size',
    'exif_orientation', 'image_orientation', 'open_image', 'scale_intensity'
]

EXIF_FORMATS = ('JPEG', 'MPO', 'PNG', 'TIFF', 'WEBP')
_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
# OpenCV's read flags that keep the depth and the channels (grey stays
# grey, 16 bits stay 16) and apply the EXIF orientation as mmdet's
# LoadImageFromFile (IMREAD_COLOR) does; IMREAD_UNCHANGED ignores it,
# except for TIFF, which OpenCV always turns upright.
_TURNED = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


@functools.cache
def cv2_applies_orientation(fmt: str) -> bool:
    """Whether this OpenCV build turns an image of format ``fmt`` (PIL's
    name) upright by its EXIF orientation when reading in colour.

    OpenCV versions differ (PNG's eXIf chunk is read since 4.x); a 1x2
    image with orientation 6 is written with PIL and read back once.
    """
    if fmt not in EXIF_FORMATS:
        return False
    buf = io.BytesIO()
    img = Image.new('RGB', (2, 1))
    try:
        if fmt == 'TIFF':
            img.save(buf, format=fmt, tiffinfo={0x0112: 6})
        else:
            exif = Image.Exif()
            exif[0x0112] = 6
            img.save(buf, format='JPEG' if fmt == 'MPO' else fmt,
                     exif=exif.tobytes())
    except (OSError, KeyError, ValueError):  # PIL cannot write it
        return fmt in ('JPEG', 'MPO', 'TIFF')
    out = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8),
                       cv2.IMREAD_COLOR)
    return out is not None and out.shape[:2] == (2, 1)


def exif_orientation(path: Union[str, BinaryIO]) -> int:
    """Read the EXIF orientation tag (1..8) that the image loaders apply
    (:func:`image_orientation`); 1 if absent.

    Args:
        path (str | BinaryIO): The image file, or its bytes as a file.

    Returns:
        int: The orientation, 1 meaning "as stored".
    """
    try:
        with open_image(path) as img:
            return image_orientation(img)
    except (OSError, SyntaxError, ValueError):
        return 1


def open_image(path: Union[str, BinaryIO]) -> Image.Image:
    """``PIL.Image.open`` without its decompression-bomb limit (the pixels
    are decoded by OpenCV; PIL reads the header): a whole-slide or
    remote-sensing image over 179 MP raised DecompressionBombError."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        return Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def displayed_size(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image as the loaders return it (turned by
    its EXIF orientation where OpenCV turns it), from its header.

    Args:
        path (str): The image file.

    Returns:
        tuple[int, int]: Width and height in pixels.

    Raises:
        OSError: The file is missing or not an image PIL reads.
    """
    if path.lower().endswith('.png'):
        with open(path, 'rb', buffering=0) as f:  # the IHDR chunk: 24 bytes
            head = f.read(24)
            if head[:8] == _PNG_MAGIC and head[12:16] == b'IHDR':
                width, height = struct.unpack('>II', head[16:24])
                if width and height:
                    turned = cv2_applies_orientation('PNG') and \
                        _png_orientation(f) >= 5
                    return (height, width) if turned else (width, height)
    with open_image(path) as img:
        w, h = img.size
        if img.format == 'TIFF':  # newer Pillow turns a TIFF's size
            w, h = img.tag_v2.get(256, w), img.tag_v2.get(257, h)
        return (h, w) if image_orientation(img) >= 5 else (w, h)


def _png_orientation(f: BinaryIO) -> int:
    """EXIF orientation of a PNG's ``eXIf`` chunk, before or after the
    pixel data (OpenCV reads both), found by skipping from chunk header to
    chunk header: PIL's ``getexif`` decodes the whole image to look after
    the pixel data."""
    size = os.fstat(f.fileno()).st_size
    f.seek(8)
    while True:
        head = f.read(8)
        if len(head) < 8:
            return 1
        length, kind = struct.unpack('>I4s', head)
        if kind == b'IEND' or f.tell() + length > size:  # cut or corrupt
            return 1
        if kind != b'eXIf':
            f.seek(length + 4, 1)  # the data and its CRC
            continue
        exif = Image.Exif()
        try:
            exif.load(f.read(length))
            value = exif.get(0x0112, 1)  # tags decode lazily
        except (OSError, SyntaxError, ValueError, TypeError, struct.error):
            return 1
        return value if value in range(1, 9) else 1


def image_orientation(img: Image.Image) -> int:
    """EXIF orientation (1..8) of an opened image, where the loaders
    (OpenCV, for mmdet's ``LoadImageFromFile`` and
    :class:`LoadDomainImageFromFile`) apply it; else 1.

    Args:
        img (PIL.Image.Image): An image opened with PIL (not decoded).

    Returns:
        int: The orientation, 1 meaning "as stored".
    """
    if not cv2_applies_orientation(img.format):
        return 1
    value = img.getexif().get(0x0112, 1)
    return value if value in range(1, 9) else 1


def scale_intensity(img: np.ndarray,
                    value_range: Optional[Sequence[float]] = None,
                    percentiles: Optional[Sequence[float]] = None,
                    to_float32: bool = False) -> np.ndarray:
    """Map intensities linearly from a window to ``[0, 255]``.

    The window is ``value_range`` if given, else the ``percentiles``
    (low, high) of this image if given, else the full range of an integer
    dtype (``0..65535`` for ``uint16``, ``-32768..32767`` for ``int16``;
    ``uint8`` is returned unchanged) or a float image's own finite
    minimum and maximum. Values outside the window are clipped; NaN
    (nodata) becomes 0 and is left out of percentiles.

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
    finite = not np.issubdtype(img.dtype, np.floating) or \
        bool(np.isfinite(img).any())
    if value_range is not None:
        low, high = (float(v) for v in value_range)
    elif not finite:  # nothing but nodata
        low, high = 0.0, 1.0
    elif percentiles is not None:
        low, high = (float(v) for v in np.nanpercentile(
            np.where(np.isinf(img), np.nan, img) if
            np.issubdtype(img.dtype, np.floating) else img, percentiles))
    elif np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)  # signed: from its minimum
        low, high = float(min(info.min, 0)), float(info.max)
    else:  # float: this image's finite range
        low, high = (float(f(img[np.isfinite(img)]))
                     for f in (np.min, np.max))
    if not high > low:
        high = low + 1.0
    out = (img.astype(np.float32) - low) * (255.0 / (high - low))
    out = np.clip(np.nan_to_num(out, nan=0.0), 0, 255)  # nodata: black
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
            image viewers, labelling tools and mmdet's loader (OpenCV does
            it, where this OpenCV build does; TIFFs are always turned by
            OpenCV). Defaults to True.
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
        # OpenCV turns the image by its EXIF orientation exactly where it
        # does for mmdet's loader (TIFF also with apply_exif=False); turning
        # it here again turned TIFFs twice.
        flag = _TURNED if self.apply_exif else cv2.IMREAD_UNCHANGED
        img = cv2.imdecode(buf, flag) if buf.size else None
        if img is None:
            raise OSError(f'cannot decode image {path}')
        return img

    def _channels(self, img: np.ndarray) -> np.ndarray:
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[:, :, :3]  # BGRA -> BGR, alpha dropped
        if self.color_type == 'grayscale':
            if img.ndim == 3:
                weights = np.array([0.114, 0.587, 0.299])  # B, G, R
                grey = np.rint(img.astype(np.float64) @ weights)  # not trunc
                if np.issubdtype(img.dtype, np.integer):
                    info = np.iinfo(img.dtype)
                    grey = np.clip(grey, info.min, info.max)
                img = grey.astype(img.dtype)
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
