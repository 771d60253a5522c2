"""Inference inputs: an image, a folder, a glob or a video file.

Images are read with OpenCV (BGR, ``uint8``, ``(H, W, 3)``). A file that
does not decode is logged and reported as ``None`` so the caller can skip
and count it; nothing is dropped silently.
"""
import glob
import os
import os.path as osp
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv')


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
        paths = [osp.join(source, f) for f in os.listdir(source)
                 if f.lower().endswith(IMAGE_EXTS)]
    elif osp.isfile(source):
        paths = [source]
    else:
        paths = [p for p in glob.glob(source, recursive=True)
                 if p.lower().endswith(IMAGE_EXTS)]
    if not paths:
        raise FileNotFoundError(
            f'no images found for {source!r} (expected an image, a folder '
            f'of {"/".join(IMAGE_EXTS)} files, a glob, or a video with '
            f'extension {"/".join(VIDEO_EXTS)})')
    return sorted(paths)


def read_image(path: str) -> Optional[np.ndarray]:
    """Read a BGR image; None (and a logged warning) if it does not decode.

    Args:
        path (str): Image file.

    Returns:
        np.ndarray, optional: ``(H, W, 3)`` uint8 BGR image or None.
    """
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        print_log(f'skipping {path}: not a decodable image', 'current',
                  level=30)
        return None
    return image


class VideoReader:
    """Frames of a video file, with its fps and size.

    Args:
        path (str): Video file (mp4 / avi / ...).
    """

    def __init__(self, path: str) -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'video not found: {path}')
        self.path = path
        self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            raise ValueError(f'OpenCV cannot open the video {path}')
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.num_frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def frames(self) -> Iterator[Tuple[int, Optional[np.ndarray]]]:
        """Yield ``(index, frame)``; frame is None for a corrupt frame.

        A frame that fails to decode before the container's frame count is
        reached is reported as None and reading goes on with the next one.

        Returns:
            Iterator[Tuple[int, np.ndarray | None]]: Frames in order.
        """
        index = 0
        while True:
            ok, frame = self.cap.read()
            if not ok or frame is None:
                if index >= self.num_frames or not self.cap.grab():
                    break
                print_log(f'{self.path}: frame {index} does not decode, '
                          'skipped', 'current', level=30)
                yield index, None
                index += 2  # the failed frame and the grabbed one
                continue
            yield index, frame
            index += 1
        self.cap.release()
