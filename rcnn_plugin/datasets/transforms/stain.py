"""Stain augmentation for stained microscopy (H&E, Giemsa / Wright).

Tellez et al. 2018 ("Whole-slide mitosis detection in H&E breast histology
using PHH3 as a reference to train distilled stain-invariant convolutional
networks") perturb each channel of the haematoxylin-eosin-DAB (HED) colour
deconvolution: ``s' = s * alpha + beta`` with ``alpha ~ U(1 - sigma,
1 + sigma)`` and ``beta ~ U(-bias, bias)``. The deconvolution uses
scikit-image's stain matrices (those of ``rgb2hed`` / ``hed2rgb``);
scikit-image comes with the ``robustness`` extra.
"""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

__all__ = ['HEDJitter']


def _skimage_color():
    try:
        from skimage import color
    except ImportError:
        raise ImportError('HEDJitter needs scikit-image: pip install -e '
                          '".[robustness]"') from None
    return color


@TRANSFORMS.register_module()
class HEDJitter(BaseTransform):
    """Random stain variation in HED space (Tellez et al. 2018).

    Required key: ``img`` (HxWx3, uint8, BGR as mmcv loads it). Modified:
    ``img``. Boxes and masks are unchanged.

    Args:
        sigma (float): Scale jitter per stain channel. Defaults to 0.05.
        bias (float): Shift jitter per stain channel. Defaults to 0.05.
        prob (float): Chance an image is changed. Defaults to 0.5.
        bgr (bool): The image is BGR. Defaults to True.
    """

    def __init__(self, sigma: float = 0.05, bias: float = 0.05,
                 prob: float = 0.5, bgr: bool = True) -> None:
        for name, value in (('sigma', sigma), ('bias', bias)):
            if not 0 <= value < 1:
                raise ValueError(f'HEDJitter {name} must be in [0, 1), got '
                                 f'{value}')
        if not 0 <= prob <= 1:
            raise ValueError(f'HEDJitter prob must be in [0, 1], got {prob}')
        self.sigma, self.bias, self.prob, self.bgr = sigma, bias, prob, bgr
        _skimage_color()  # fail when the config is built, not mid-epoch

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f'HEDJitter needs an HxWx3 uint8 image; '
                f'{results.get("img_path", "the image")} is '
                f'{img.dtype} {img.shape}')
        color = _skimage_color()
        rgb = (img[..., ::-1] if self.bgr else img).astype(np.float64)
        # skimage's rgb2hed / hed2rgb, without the clipping of negative
        # stains in rgb2hed (which makes even a zero jitter change pixels).
        log_adjust = np.log(1e-6)
        od = np.log(np.maximum(rgb / 255, 1e-6)) / log_adjust
        hed = od @ color.hed_from_rgb
        alpha = np.random.uniform(1 - self.sigma, 1 + self.sigma, 3)
        beta = np.random.uniform(-self.bias, self.bias, 3)
        out = np.exp((hed * alpha + beta) @ color.rgb_from_hed * log_adjust)
        out = np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
        results['img'] = np.ascontiguousarray(out[..., ::-1] if self.bgr
                                              else out)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sigma={self.sigma}, '
                f'bias={self.bias}, prob={self.prob})')
