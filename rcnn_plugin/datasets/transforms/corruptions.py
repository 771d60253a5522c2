"""Image corruptions of Michaelis et al. 2019, seeded and placed safely.

The corruptions themselves come from the ``imagecorruptions`` package (the
``robustness`` extra). Its release 1.1.2 fails three of them on today's
stack (``glass_blur`` and ``gaussian_blur`` call scikit-image's
``gaussian(multichannel=True)``, removed in 0.19; ``fog`` uses ``np.float_``,
removed in NumPy 2.0); :func:`patch_imagecorruptions` mends both inside that
package's module only, so mmdet's ``Corrupt`` transform works after it too.
It also serves ``glass_blur``'s pixel shuffle from a flat index list: the
same draws and the same copies in the same order, bit-identical, about 20x
faster than the package's loop over NumPy pixels.

The corruptions draw from NumPy's global random state (impulse noise, made
to, too). :func:`corrupt` seeds
it for the call from (seed, image, corruption, severity) and restores it,
so a sweep gives the same numbers in any order and with any workers.
"""
import hashlib
import types
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from rcnn_plugin.utils.config_types import cfg_type_name

__all__ = [
    'BENCHMARK', 'HOLDOUT', 'GROUPS', 'SeededCorrupt', 'RandomCorrupt',
    'corrupt', 'resolve_corruptions', 'check_severities',
    'insert_after_loading', 'patch_imagecorruptions', 'LOADING_TYPES'
]

NOISE = ('gaussian_noise', 'shot_noise', 'impulse_noise')
BLUR = ('defocus_blur', 'glass_blur', 'motion_blur', 'zoom_blur')
WEATHER = ('snow', 'frost', 'fog', 'brightness')
DIGITAL = ('contrast', 'elastic_transform', 'pixelate', 'jpeg_compression')
BENCHMARK = NOISE + BLUR + WEATHER + DIGITAL
HOLDOUT = ('speckle_noise', 'gaussian_blur', 'spatter', 'saturate')
GROUPS = dict(benchmark=BENCHMARK, holdout=HOLDOUT, noise=NOISE, blur=BLUR,
              weather=WEATHER, digital=DIGITAL, all=BENCHMARK + HOLDOUT)
# Image-loading transforms after which a corruption goes.
LOADING_TYPES = ('LoadImageFromFile', 'LoadDomainImageFromFile',
                 'LoadImageFromNDArray', 'LoadMultiChannelImageFromFiles',
                 'LoadImageFromWebcam')


def resolve_corruptions(names: Union[str, Iterable[str]]) -> List[str]:
    """Corruption and group names to corruption names, in order, no repeats.

    Args:
        names (str | list[str]): Corruption names (``'fog'``) or groups
            (``'benchmark'``, ``'holdout'``, ``'noise'``, ``'blur'``,
            ``'weather'``, ``'digital'``, ``'all'``).

    Raises:
        ValueError: An unknown name, listing the valid ones.
    """
    if isinstance(names, str):
        names = [names]
    out: List[str] = []
    for name in names:
        found = GROUPS.get(name, (name, ) if name in GROUPS['all'] else None)
        if found is None:
            raise ValueError(
                f'unknown corruption {name!r}; valid corruptions: '
                f'{", ".join(GROUPS["all"])}; groups: {", ".join(GROUPS)}')
        out.extend(n for n in found if n not in out)
    if not out:
        raise ValueError('no corruption named')
    return out


def check_severities(severities: Iterable[int]) -> List[int]:
    """Severities as ints in 0..5 (0 is the clean image).

    Raises:
        ValueError: A severity outside 0 to 5, listing the valid ones.
    """
    out = []
    for s in severities:
        if isinstance(s, bool) or int(s) != s or not 0 <= s <= 5:
            raise ValueError(f'severity {s!r} is not valid; severities are '
                             '0 (clean), 1, 2, 3, 4 and 5')
        out.append(int(s))
    return out


class _NumpyWithFloat(types.ModuleType):
    """numpy for imagecorruptions' module, with the ``float_`` it uses."""

    float_ = np.float64

    def __getattr__(self, name):
        return getattr(np, name)


class _Delegate(types.ModuleType):
    """A module that answers from ``target`` except where overridden."""

    def __init__(self, target, **overrides) -> None:
        super().__init__(target.__name__)
        self._target = target
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._target, name)


def patch_imagecorruptions():
    """Import ``imagecorruptions`` and mend it for NumPy 2 and skimage >= 0.19.

    Idempotent. Only ``imagecorruptions.corruptions`` sees the changes:
    ``gaussian(multichannel=)`` becomes ``channel_axis``, ``np.float_`` is
    float64, and skimage's ``random_noise`` is seeded from NumPy's global
    random state like every other corruption. ``glass_blur`` is swapped for
    a bit-identical, faster one in the package's ``corruption_dict`` too.

    Returns:
        module: ``imagecorruptions``.

    Raises:
        ImportError: It is not installed, with the command to install it.
    """
    try:
        import imagecorruptions
        import imagecorruptions.corruptions as mod
    except ImportError:
        raise ImportError(
            'the corruptions need imagecorruptions: pip install -e '
            '".[robustness]" (or pip install imagecorruptions)') from None
    if getattr(mod, '_rcnn_plugin_patched', False):
        return imagecorruptions
    gaussian = mod.gaussian

    def gaussian_compat(image, *args, multichannel=None, **kwargs):
        if multichannel is not None and 'channel_axis' not in kwargs:
            kwargs['channel_axis'] = -1 if multichannel else None
        return gaussian(image, *args, **kwargs)

    mod.gaussian = gaussian_compat
    # impulse_noise calls skimage's random_noise, which draws from its own
    # unseeded generator: seed it from NumPy's (seeded) global state.
    util = mod.sk.util

    def random_noise(image, *args, rng=None, **kwargs):
        if rng is None:
            rng = int(np.random.randint(2**31 - 1))
        return util.random_noise(image, *args, rng=rng, **kwargs)

    mod.sk = _Delegate(mod.sk, util=_Delegate(util,
                                              random_noise=random_noise))
    if not hasattr(np, 'float_') or np.__version__ >= '2':
        mod.np = _NumpyWithFloat('numpy')
    fast = _fast_glass_blur(mod)
    imagecorruptions.corruption_dict['glass_blur'] = fast
    imagecorruptions.corruption_tuple = tuple(
        fast if f is mod.glass_blur else f
        for f in imagecorruptions.corruption_tuple)
    mod.glass_blur = fast
    mod._rcnn_plugin_patched = True
    return imagecorruptions


def _fast_glass_blur(mod):
    """imagecorruptions' ``glass_blur`` with its pixel loop on an index list.

    The package walks the pixels bottom-right to top-left, draws
    ``(dx, dy)`` for each and runs ``x[h, w], x[h', w'] = x[h', w'],
    x[h, w]``. On an HxWx3 array both sides are views, so that copies
    ``x[h', w']`` into ``x[h, w]`` and leaves ``x[h', w']`` as it was. The
    same copies are made here on the pixels' source indices, with the
    draws taken in one call (the same stream), then the image is gathered
    once. ``original`` is the package's function, for the test.
    """
    original = mod.glass_blur

    def glass_blur(x, severity=1):
        sigma, d, iterations = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3),
                                (1.1, 3, 2), (1.5, 4, 2)][severity - 1]
        x = np.uint8(
            mod.gaussian(np.array(x) / 255., sigma=sigma, multichannel=True)
            * 255)
        h, w = x.shape[:2]
        rows = np.arange(h - d, d, -1)
        cols = np.arange(w - d, d, -1)
        dst = (rows[:, None] * w + cols[None, :]).ravel()
        src = np.arange(h * w)
        for _ in range(iterations):
            dx_dy = np.random.randint(-d, d, size=(dst.size, 2))
            frm = (dst + dx_dy[:, 1] * w + dx_dy[:, 0]).tolist()
            index = src.tolist()
            for i, j in zip(dst.tolist(), frm):
                index[i] = index[j]
            src = np.asarray(index)
        x = x.reshape(h * w, -1)[src].reshape(x.shape)
        return np.clip(
            mod.gaussian(x / 255., sigma=sigma, multichannel=True), 0,
            1) * 255

    glass_blur.original = original
    return glass_blur


def _seed(*parts) -> int:
    text = '|'.join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], 'little')


def corrupt(img: np.ndarray, name: str, severity: int,
            seed: Optional[int] = None, key: object = '',
            bgr: bool = True) -> np.ndarray:
    """One corruption of one image, seeded; severity 0 returns a copy.

    Args:
        img (np.ndarray): HxWx3 (or HxW) uint8 image.
        name (str): A corruption name.
        severity (int): 0 to 5.
        seed (int, optional): With ``key``, seeds the corruption's draws;
            None leaves NumPy's global state as it is. Defaults to None.
        key (object): What tells images apart (e.g. the image path).
        bgr (bool): The image is BGR (mmcv's default); the corruptions are
            made for RGB (saturate, frost, snow), so it is flipped around
            the call. Defaults to True.

    Returns:
        np.ndarray: The corrupted image, uint8, same shape.
    """
    [name] = resolve_corruptions([name])
    [severity] = check_severities([severity])
    if severity == 0:
        return img.copy()
    if img.dtype != np.uint8:
        raise ValueError(f'corruptions need a uint8 image, got {img.dtype} '
                         '(scale 16-bit images to uint8 first)')
    lib = patch_imagecorruptions()
    gray = img.ndim == 2 or img.shape[-1] == 1
    x = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2) \
        if gray else (img[..., ::-1] if bgr else img)
    state = np.random.get_state() if seed is not None else None
    try:
        if seed is not None:
            np.random.seed(_seed(seed, key, name, severity))
        out = lib.corrupt(np.ascontiguousarray(x), corruption_name=name,
                          severity=severity)
    finally:
        if state is not None:
            np.random.set_state(state)
    out = np.asarray(out)
    if out.shape[:2] != x.shape[:2]:  # frost/fog crop to their own size
        import cv2
        out = cv2.resize(out, (x.shape[1], x.shape[0]))
    out = np.clip(out, 0, 255).astype(np.uint8)
    if gray:
        return out[..., :1].reshape(img.shape)
    return np.ascontiguousarray(out[..., ::-1] if bgr else out)


@TRANSFORMS.register_module()
class SeededCorrupt(BaseTransform):
    """Apply one corruption at one severity, the same for every run.

    Unlike mmdet's ``Corrupt``, the draws are seeded per image (from
    ``seed``, the image's folder and file name and the corruption; not the
    whole path, so a copy of the data or the repository elsewhere draws
    the same corruptions, while seq1/0001.png and seq2/0001.png differ),
    the image is passed to
    the corruption as RGB, and the three corruptions that fail on NumPy 2 /
    scikit-image >= 0.19 work. Required key: ``img`` (uint8).

    Args:
        corruption (str): A corruption name (``resolve_corruptions``).
        severity (int): 0 (no change) to 5.
        seed (int): Defaults to 0.
    """

    def __init__(self, corruption: str, severity: int, seed: int = 0):
        [self.corruption] = resolve_corruptions([corruption])
        [self.severity] = check_severities([severity])
        self.seed = seed

    def transform(self, results: dict) -> dict:
        path = results.get('img_path')
        key = '/'.join(path.replace('\\', '/').split('/')[-2:]) if path \
            else results.get('img_id', '')
        results['img'] = corrupt(results['img'], self.corruption,
                                 self.severity, seed=self.seed, key=key)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed})')


@TRANSFORMS.register_module()
class RandomCorrupt(BaseTransform):
    """Training augmentation: a random corruption at a random severity.

    Drawn only from corruptions outside the robustness benchmark by
    default (the four held-out ones), so that training on them does not
    leak into the evaluation (Michaelis et al. 2019).

    Args:
        corruptions (str | list[str]): Names or groups. Defaults to
            ``'holdout'``.
        severities (list[int]): Drawn uniformly. Defaults to (1, 2, 3).
        prob (float): Chance an image is corrupted. Defaults to 0.5.
        allow_benchmark (bool): Allow benchmark corruptions (the
            evaluation would then not measure robustness to unseen
            corruptions). Defaults to False.
    """

    def __init__(self, corruptions: Union[str, Sequence[str]] = 'holdout',
                 severities: Sequence[int] = (1, 2, 3), prob: float = 0.5,
                 allow_benchmark: bool = False) -> None:
        self.corruptions = resolve_corruptions(corruptions)
        self.severities = check_severities(severities)
        if not self.severities or 0 in self.severities:
            raise ValueError('RandomCorrupt severities must be 1 to 5, got '
                             f'{list(severities)}')
        if not 0 <= prob <= 1:
            raise ValueError(f'RandomCorrupt prob must be in [0, 1], got '
                             f'{prob}')
        leaked = [c for c in self.corruptions if c in BENCHMARK]
        if leaked and not allow_benchmark:
            raise ValueError(
                f'RandomCorrupt: {leaked} are benchmark corruptions; '
                'training on them inflates the robustness benchmark. Use '
                f"the held-out ones ({', '.join(HOLDOUT)}) or set "
                'allow_benchmark=True')
        self.prob = prob
        patch_imagecorruptions()  # fail at build time when missing

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        name = self.corruptions[np.random.randint(len(self.corruptions))]
        severity = self.severities[np.random.randint(len(self.severities))]
        results['img'] = corrupt(results['img'], name, severity)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(corruptions={self.corruptions}, '
                f'severities={self.severities}, prob={self.prob})')


def insert_after_loading(pipeline: list, transform: dict,
                         where: str = 'pipeline') -> list:
    """A copy of ``pipeline`` with ``transform`` right after image loading.

    Args:
        pipeline (list[dict]): Transform configs.
        transform (dict): The transform to insert.
        where (str): The pipeline's name, for the error.

    Raises:
        ValueError: The pipeline loads no image, naming it.
    """
    types_ = [cfg_type_name(t) for t in pipeline]
    hits = [i for i, t in enumerate(types_) if t in LOADING_TYPES]
    if not hits:
        raise ValueError(
            f'{where} has no image-loading step (one of '
            f'{", ".join(LOADING_TYPES)}), so there is no place for the '
            f'corruption; its steps: {types_}')
    i = hits[0] + 1
    return list(pipeline[:i]) + [dict(transform)] + list(pipeline[i:])
