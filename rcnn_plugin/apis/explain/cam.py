"""EigenCAM, Grad-CAM and ODAM on FPN / backbone levels of an mmdet model.

The CAM machinery (running the model, weighting, ReLU, resizing and
normalising each map) is the ``grad-cam`` package's (import name
``pytorch_grad_cam``, the ``explain`` extra). What mmdet needs on top is
ours:

- :class:`LevelHooks` replaces the package's activation hooks, which drop
  the gradient of a module that returns a tuple (mmdet's ``neck`` returns
  one tensor per FPN level). Every level is kept; a level that the target
  does not reach gets a zero gradient. The *multi-level reshape* resizes
  all levels to the level closest to stride 8 and stacks their channels,
  as the package's tutorial does for torchvision's FPN.
- :class:`DetectionTarget`: the score of the detection being explained,
  found again in the model's output (best IoU, same class): IoU x class
  score for Grad-CAM, the class score for ODAM.
- ODAM (Zhao et al., ICLR 2023) is written here: the element-wise product
  of the instance score's gradient and the activation, summed over
  channels, then ReLU.
- EigenCAM's projection uses a thin SVD with the sign chosen so the
  largest magnitude is positive (the package's full SVD builds an
  ``HW x HW`` matrix: gigabytes at stride 8 on a 1333 px image).

Shapes: ``(B, C, h_l, w_l)`` per level; maps ``(B, H, W)`` in [0, 1].
"""
import functools
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .adapter import Detections, best_match

__all__ = [
    'CAM_METHODS', 'DetectionTarget', 'LevelHooks', 'build_cam',
    'layer_choices', 'require_grad_cam', 'resolve_layer'
]

CAM_METHODS = ('eigencam', 'gradcam', 'odam')


def require_grad_cam():
    """The ``pytorch_grad_cam`` module, or an ImportError saying how.

    Returns:
        module: ``pytorch_grad_cam``.
    """
    try:
        import pytorch_grad_cam
    except ImportError as err:
        raise ImportError(
            'EigenCAM, Grad-CAM and ODAM need the grad-cam package: '
            'pip install -e ".[explain]" (or pip install "grad-cam>=1.5,<2")'
        ) from err
    return pytorch_grad_cam


def layer_choices(model: nn.Module) -> List[str]:
    """Names of the FPN and backbone levels, for an error message.

    Args:
        model (nn.Module): The detector.

    Returns:
        List[str]: ``neck``, ``backbone`` and their level modules.
    """
    names = []
    for root in ('neck', 'backbone'):
        part = getattr(model, root, None)
        if part is None:
            continue
        names.append(root)
        for name, child in part.named_children():
            if isinstance(child, nn.ModuleList):
                names += [f'{root}.{name}.{i}' for i in range(len(child))]
            else:
                names.append(f'{root}.{name}')
    return names


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called ``name`` (``neck``, ``neck.fpn_convs.1``...).

    Args:
        model (nn.Module): The detector.
        name (str): A dotted module name.

    Returns:
        nn.Module: The module.
    """
    modules = dict(model.named_modules())
    if not name or name not in modules:
        raise ValueError(
            f'layer {name!r} is not a module of the model; its FPN and '
            f'backbone levels are: {", ".join(layer_choices(model))}')
    return modules[name]


def multi_level(levels: Sequence[Tensor], ref_stride: int = 8,
                input_hw: Optional[Tuple[int, int]] = None) -> Tensor:
    """All levels resized to the one nearest ``ref_stride``, stacked.

    Args:
        levels (Sequence[Tensor]): ``(B, C_l, h_l, w_l)`` maps.
        ref_stride (int): Stride whose resolution is kept. Defaults to 8.
        input_hw (tuple, optional): Input height and width, to tell the
            strides. Defaults to None (the finest level is kept).

    Returns:
        Tensor: ``(B, sum C_l, h_ref, w_ref)``.
    """
    if len(levels) == 1:
        return levels[0]
    sizes = [t.shape[-2:] for t in levels]
    ref = 0
    if input_hw is not None:
        strides = [input_hw[0] / s[0] for s in sizes]
        ref = int(np.argmin([abs(np.log2(s / ref_stride)) for s in strides]))
    size = tuple(sizes[ref])
    return torch.cat([t if tuple(t.shape[-2:]) == size else F.interpolate(
        t, size, mode='bilinear', align_corners=False) for t in levels], 1)


class LevelHooks:
    """Activations and gradients of modules returning tensors or tuples.

    A drop-in for ``pytorch_grad_cam``'s ``ActivationsAndGradients``.

    Args:
        model (nn.Module): The module the CAM calls.
        target_layers (List[nn.Module]): Hooked modules.
        ref_stride (int): Stride kept by the multi-level reshape.
            Defaults to 8.
    """

    def __init__(self, model: nn.Module, target_layers: List[nn.Module],
                 ref_stride: int = 8) -> None:
        self.model = model
        self.ref_stride = ref_stride
        self.handles = [layer.register_forward_hook(self._save)
                        for layer in target_layers]
        self._acts: List[List[Tensor]] = []
        self._grads: List[List[Optional[Tensor]]] = []
        self._hw: Optional[Tuple[int, int]] = None

    def _save(self, module, inputs, output) -> None:
        levels = output if isinstance(output, (tuple, list)) else [output]
        levels = [t for t in levels if isinstance(t, Tensor) and t.dim() == 4]
        grads: List[Optional[Tensor]] = [None] * len(levels)
        for i, t in enumerate(levels):
            if t.requires_grad:
                t.register_hook(functools.partial(self._store, grads, i))
        self._acts.append([t.detach() for t in levels])
        self._grads.append(grads)

    @staticmethod
    def _store(grads: list, index: int, grad: Tensor) -> None:
        grads[index] = grad.detach()

    def _reshape(self, levels: List[Tensor]) -> Tensor:
        return multi_level(levels, self.ref_stride, self._hw).cpu()

    @property
    def activations(self) -> List[Tensor]:
        """Per hooked module: its levels reshaped to one tensor."""
        return [self._reshape(a) for a in self._acts]

    @property
    def gradients(self) -> List[Tensor]:
        """Per hooked module: gradients (zeros where none arrived)."""
        return [self._reshape([g if g is not None else torch.zeros_like(a)
                               for g, a in zip(gs, acts)])
                for gs, acts in zip(self._grads, self._acts)]

    def __call__(self, x: Tensor):
        self._acts, self._grads = [], []
        self._hw = tuple(x.shape[-2:])
        return self.model(x)

    def clear(self) -> None:
        """Forget the stored tensors."""
        self._acts, self._grads = [], []

    def release(self) -> None:
        """Remove the hooks."""
        self.clear()
        for handle in self.handles:
            handle.remove()
        self.handles = []


class DetectionTarget:
    """The score of one detection in the model's output on an input.

    Args:
        box (Tensor): ``(4,)`` box being explained (input frame).
        label (int): Its class.
        use_iou (bool): Multiply the class score by the IoU with ``box``
            (Grad-CAM); False keeps the class score alone (ODAM).
            Defaults to True.
    """

    def __init__(self, box: Tensor, label: int, use_iou: bool = True) -> None:
        self.box = box.detach().reshape(4)
        self.label = int(label)
        self.use_iou = use_iou

    def __call__(self, dets: Detections) -> Tensor:
        from torchvision.ops import box_iou
        index = best_match(dets, self.box, self.label)
        if index is None:  # keeps the graph: a zero map, not an error
            return dets['scores'].sum() * 0.0
        score = dets['scores'][index]
        if not self.use_iou:
            return score
        iou = box_iou(self.box[None].to(dets['boxes']),
                      dets['boxes'][index][None])[0, 0]
        return iou * score


def _thin_projection(acts: np.ndarray) -> np.ndarray:
    """First principal component of ``(B, C, h, w)`` activations."""
    out = []
    for act in np.nan_to_num(acts):
        flat = act.reshape(act.shape[0], -1).T
        flat = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        proj = (flat @ vt[0]).reshape(act.shape[1:])
        out.append(-proj if -proj.min() > proj.max() else proj)
    return np.float32(out)


@functools.cache
def _cam_classes() -> Dict[str, type]:
    gc = require_grad_cam()

    class EigenCAM(gc.EigenCAM):
        def get_cam_image(self, input_tensor, target_layer, targets,
                          activations, grads, eigen_smooth):
            return _thin_projection(activations)

    class ODAM(gc.GradCAM):
        def get_cam_image(self, input_tensor, target_layer, targets,
                          activations, grads, eigen_smooth):
            return (grads * activations).sum(axis=1)  # BaseCAM ReLUs it

    return dict(eigencam=EigenCAM, gradcam=gc.GradCAM, odam=ODAM)


def build_cam(method: str, adapter: nn.Module, layer: nn.Module,
              ref_stride: int = 8):
    """A CAM of ``pytorch_grad_cam`` on ``layer`` with :class:`LevelHooks`.

    Args:
        method (str): ``eigencam``, ``gradcam`` or ``odam``.
        adapter (nn.Module): The model the CAM calls (a
            :class:`DetectorAdapter`).
        layer (nn.Module): The hooked module.
        ref_stride (int): Stride kept by the multi-level reshape.
            Defaults to 8.

    Returns:
        BaseCAM: Call it as ``cam(x, targets)``; ``cam.release()`` after.
    """
    if method not in CAM_METHODS:
        raise ValueError(f'unknown CAM method {method!r}; valid: '
                         f'{", ".join(CAM_METHODS)}')
    cam = _cam_classes()[method](adapter, [layer])
    cam.activations_and_grads.release()
    cam.activations_and_grads = LevelHooks(adapter, [layer], ref_stride)
    cam.compute_input_gradient = method != 'eigencam'
    cam.release = cam.activations_and_grads.release
    return cam
