"""Per-detection saliency maps (EigenCAM, Grad-CAM, ODAM, D-RISE).

EigenCAM and Grad-CAM need the ``explain`` extra (``grad-cam``); ODAM and
D-RISE are written here. See docs/interpretability.md.
"""
from .adapter import DetectorAdapter, best_match, frozen, prepare_image
from .benchmark import BASELINES, benchmark_image, markdown_table, summarise
from .cam import CAM_METHODS, DetectionTarget, layer_choices, resolve_layer
from .drise import drise, random_masks
from .explainer import (
                        METHODS,
                        Explainer,
                        Explanation,
                        explain_image,
                        normalise,
)
from .vis import overlay, saliency_grid, saliency_panels

__all__ = [
    'BASELINES', 'CAM_METHODS', 'METHODS', 'DetectionTarget',
    'DetectorAdapter', 'Explainer', 'Explanation', 'benchmark_image',
    'best_match', 'drise', 'explain_image', 'frozen', 'layer_choices',
    'markdown_table', 'normalise', 'overlay', 'prepare_image',
    'random_masks', 'resolve_layer', 'saliency_grid', 'saliency_panels',
    'summarise'
]
