"""Stain augmentation for stained microscopy (H&E, Giemsa / Wright).

Tellez et al. 2018 ("Whole-slide mitosis detection in H&E breast histology
using PHH3 as a reference to train distilled stain-invariant convolutional
networks") perturb each channel of the haematoxylin-eosin-DAB (HED) colour
deconvolution: ``s' = s * alpha + beta`` with ``alpha ~ U(1 - sigma,
1 + sigma)`` and ``beta ~ U(-bias, bias)``. The deconvolution uses
scikit-image's stain matrices (those of ``rgb2hed`` / ``hed2rgb``);
scikit-image comes with the ``robustness`` extra.

The numbers of a jitter depend on the optical-density scale. Tellez et
al.'s code deconvolves with scikit-image < 0.19, whose ``rgb2hed`` takes
``-ln(rgb + 2)`` (``rgb`` in ``[0, 1]``): their "HED-light" (sigma and bias
0.05) and "HED-strong" (0.2) ranges are in that scale, the default here.
scikit-image >= 0.19 takes ``ln(rgb) / ln(1e-6)``, in which the same numbers
change BCCD pixels about twice as much (``od='skimage'``; mean absolute
change 50 against 24 of 255 at sigma = bias = 0.05, 5 images x 20 draws).
"""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

__all__ = ['HEDJitter']

OD_SCALES = ('tellez', 'skimage')
LOG_ADJUST = np.log(1e-6)  # scikit-image >= 0.19's normalisation


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
        od (str): Optical-density scale of the jitter: ``'tellez'``
            (``-ln(rgb + 2)``, Tellez et al.'s code, where their ranges are
            defined) or ``'skimage'`` (``ln(rgb) / ln(1e-6)``, scikit-image
            >= 0.19: the same sigma and bias change pixels about twice as
            much; rcnn_plugin's only scale before session 27).
            Defaults to 'tellez'.
    """

    def __init__(self, sigma: float = 0.05, bias: float = 0.05,
                 prob: float = 0.5, bgr: bool = True,
                 od: str = 'tellez') -> None:
        for name, value in (('sigma', sigma), ('bias', bias)):
            if not 0 <= value < 1:
                raise ValueError(f'HEDJitter {name} must be in [0, 1), got '
                                 f'{value}')
        if not 0 <= prob <= 1:
            raise ValueError(f'HEDJitter prob must be in [0, 1], got {prob}')
        if od not in OD_SCALES:
            raise ValueError(f'HEDJitter od must be one of {OD_SCALES}, got '
                             f'{od!r}')
        self.sigma, self.bias, self.prob, self.bgr = sigma, bias, prob, bgr
        self.od = od
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
        rgb = (img[..., ::-1] if self.bgr else img).astype(np.float64) / 255
        # rgb2hed / hed2rgb of the chosen scikit-image scale, without the
        # clipping of negative stains in rgb2hed >= 0.19 (which makes even a
        # zero jitter change pixels).
        if self.od == 'tellez':
            od = -np.log(rgb + 2)
        else:
            od = np.log(np.maximum(rgb, 1e-6)) / LOG_ADJUST
        hed = od @ color.hed_from_rgb
        alpha = np.random.uniform(1 - self.sigma, 1 + self.sigma, 3)
        beta = np.random.uniform(-self.bias, self.bias, 3)
        od = (hed * alpha + beta) @ color.rgb_from_hed
        if self.od == 'tellez':
            out = np.exp(-od) - 2
        else:
            out = np.exp(od * LOG_ADJUST)
        out = np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
        results['img'] = np.ascontiguousarray(out[..., ::-1] if self.bgr
                                              else out)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sigma={self.sigma}, '
                f'bias={self.bias}, prob={self.prob}, od={self.od!r})')
