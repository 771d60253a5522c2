"""Prompts for convolutional detectors: input and feature-map prompts.

Shapes: N batch, 3 image channels, H x W the batch input (after the data
preprocessor's normalisation and padding), C feature channels, p the
padding width.

- :class:`InputPrompt` (visual prompting, Bahng et al. 2022): a learned
  image added to the normalised batch before the backbone. ``'padding'``
  learns only a frame of width p (four strips, as Bahng et al.),
  ``'additive'`` a full image. Both are stored at a nominal ``size`` and
  resized bilinearly to the batch's H x W (``resize=True``, the default;
  BCCD's 640 x 480 inputs match the configs' size) or, with
  ``resize=False``, added at the top-left corner (where mmdet's padding
  keeps the image), which needs ``size`` <= H x W.
- :class:`FeaturePrompt` (Pro-tuning, Nie et al. 2022): added to the output
  of chosen modules (backbone stages, FPN convs): ``'bias'`` a learned
  per-channel vector, ``'block'`` a zero-initialised depth-wise 3x3 conv
  of the feature map itself.

All start at zero, so step 0 computes the base model's outputs exactly.
They live in the model (``input_prompt``, the ``ModuleDict``
``feature_prompts`` keyed by module name with ``__`` for dots) and run in
hooks on the backbone and the prompted modules, so the base state-dict
keys do not change.

Folding (:func:`merge_prompts`): a ``'bias'`` prompt on a plain
``nn.Conv2d`` with a bias, or on an mmcv ``ConvModule`` without norm and
activation (mmdet's FPN ``fpn_convs``), folds exactly into that conv's
bias. Everything else is refused: a bias prompt folded into the *next*
conv's bias is exact only where its window never covers zero padding (1x1
convs); the input prompt varies over space; a ``'block'`` prompt of a
feature map is a conv that composes into a larger kernel with other
border effects.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn

from .conv_adapter import (
    attach,
    attached,
    detach,
    find_targets,
    probe_shape,
)


def _size(size: Sequence[int]) -> tuple:
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(
            isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f'prompt size must be (H, W) > 0, got {size!r}')
    return tuple(size)


@MODELS.register_module()
class InputPrompt(nn.Module):
    """A learned image prompt added to the normalised batch input.

    Args:
        size (Sequence[int]): Nominal (H, W) of the prompt.
        mode (str): ``'padding'`` or ``'additive'``. Defaults to 'padding'.
        width (int): p, the frame width of ``'padding'``. Defaults to 30.
        resize (bool): Resize to each batch's H x W; if False, add at the
            top-left corner. Defaults to True.
        in_channels (int): Image channels. Defaults to 3.
    """

    def __init__(self,
                 size: Sequence[int],
                 mode: str = 'padding',
                 width: int = 30,
                 resize: bool = True,
                 in_channels: int = 3) -> None:
        super().__init__()
        h, w = self.size = _size(size)
        if mode not in ('padding', 'additive'):
            raise ValueError(f"input prompt mode must be 'padding' or "
                             f"'additive', got {mode!r}")
        if mode == 'padding' and (not isinstance(width, int) or width < 1
                                  or 2 * width >= min(h, w)):
            raise ValueError(f'input prompt width must be an int in [1, '
                             f'min(size) / 2), got {width!r} for size '
                             f'{self.size}')
        self.mode, self.width, self.resize = mode, width, resize
        c = in_channels
        if mode == 'additive':
            self.prompt = nn.Parameter(torch.zeros(1, c, h, w))
        else:
            p = width
            self.pad_top = nn.Parameter(torch.zeros(1, c, p, w))
            self.pad_bottom = nn.Parameter(torch.zeros(1, c, p, w))
            self.pad_left = nn.Parameter(torch.zeros(1, c, h - 2 * p, p))
            self.pad_right = nn.Parameter(torch.zeros(1, c, h - 2 * p, p))

    def image(self) -> torch.Tensor:
        """The prompt at its nominal size: (1, 3, H0, W0)."""
        if self.mode == 'additive':
            return self.prompt
        h, w = self.size
        p = self.width
        centre = self.pad_left.new_zeros(1, self.pad_left.shape[1],
                                         h - 2 * p, w - 2 * p)
        middle = torch.cat([self.pad_left, centre, self.pad_right], dim=3)
        return torch.cat([self.pad_top, middle, self.pad_bottom], dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 3, H, W): ``x`` plus the prompt."""
        h, w = x.shape[-2:]
        if self.resize:  # the frame scales with the image: always fits
            prompt = self.image()
            if (h, w) != self.size:
                prompt = F.interpolate(prompt, size=(h, w), mode='bilinear',
                                       align_corners=False)
            return x + prompt
        if self.size[0] > h or self.size[1] > w:
            raise ValueError(f'input prompt size {self.size} is larger than '
                             f'the input {h}x{w}; pass resize=True or a '
                             'smaller size')
        pad = (0, w - self.size[1], 0, h - self.size[0])
        return x + F.pad(self.image(), pad)

    def pre_hook(self, module: nn.Module, args: tuple) -> tuple:
        """Forward pre-hook on the backbone: prompt its input."""
        return (self(args[0]), ) + tuple(args[1:])

    def extra_repr(self) -> str:
        return f'mode={self.mode}, size={self.size}, width={self.width}, ' \
               f'resize={self.resize}'


@MODELS.register_module()
class FeaturePrompt(nn.Module):
    """A zero-initialised prompt added to a module's output feature map.

    Args:
        channels (int): C of the feature map.
        kind (str): ``'bias'`` (a (C,) vector) or ``'block'`` (a depth-wise
            3x3 conv of the feature map, zero weights and bias).
            Defaults to 'bias'.
    """

    def __init__(self, channels: int, kind: str = 'bias') -> None:
        super().__init__()
        if kind not in ('bias', 'block'):
            raise ValueError(f"feature prompt kind must be 'bias' or "
                             f"'block', got {kind!r}")
        self.channels, self.kind = channels, kind
        self.bias = nn.Parameter(torch.zeros(channels))
        if kind == 'block':
            self.weight = nn.Parameter(torch.zeros(channels, 1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W): the prompt to add to ``x``."""
        if self.kind == 'bias':
            return self.bias.view(1, -1, 1, 1).expand_as(x)
        return F.conv2d(x, self.weight, self.bias, padding=1,
                        groups=self.channels)

    def hook(self, module: nn.Module, args: tuple,
             output: torch.Tensor) -> torch.Tensor:
        """Forward hook: add the prompt to the module's output."""
        return output + self(output)

    def extra_repr(self) -> str:
        return f'{self.channels}, kind={self.kind}'


def inject_prompts(model: nn.Module,
                   input: Optional[dict] = None,
                   features: Optional[dict] = None) -> List[str]:
    """Attach an input prompt and / or feature prompts, in place.

    Args:
        model (nn.Module): A built detector (with ``backbone``).
        input (dict, optional): :class:`InputPrompt` arguments (``size``,
            ``mode``, ``width``, ``resize``). Defaults to None.
        features (dict, optional): ``target_modules`` (regex over whole
            module names, e.g. ``neck\\.fpn_convs\\.\\d`` or
            ``backbone\\.layer[3-5]``) and ``kind``. Defaults to None.

    Returns:
        list[str]: Names of the prompted modules.
    """
    done = []
    if features is not None:
        features = dict(features)
        if 'target_modules' not in features:
            raise ValueError('prompt.features needs target_modules, a regex '
                             'over module names')
        targets = find_targets(model, features.pop('target_modules'),
                               'prompt.features.target_modules')
        for name in targets:
            module = model.get_submodule(name)
            prompt = FeaturePrompt(probe_shape(name, module)[1], **features)
            param = next(module.parameters())
            attach(model, 'feature_prompts', name, prompt.to(param.device))
        done += targets
    if input is not None:
        backbone = model.get_submodule('backbone')
        if hasattr(model, 'input_prompt'):
            raise ValueError('the model already has an input_prompt')
        model.input_prompt = InputPrompt(**input)
        backbone.register_forward_pre_hook(model.input_prompt.pre_hook)
        done.insert(0, 'backbone')
    return done


def _bias_conv(module: nn.Module) -> Optional[nn.Conv2d]:
    """The conv whose bias a constant on ``module``'s output folds into."""
    if type(module) is nn.Conv2d:
        conv = module
    elif type(module).__name__ == 'ConvModule' and not module.with_norm \
            and not module.with_activation and type(module.conv) is nn.Conv2d:
        conv = module.conv
    else:
        return None
    return conv if conv.bias is not None else None


def merge_prompts(model: nn.Module) -> List[str]:
    """Fold every foldable prompt into a conv bias, in place.

    Args:
        model (nn.Module): The model, changed in place.

    Returns:
        list[str]: Names of the modules whose prompt was folded.

    Raises:
        ValueError: Listing each prompt that cannot fold and why (the model
            is unchanged then).
    """
    why, found = [], {}
    if isinstance(getattr(model, 'input_prompt', None), InputPrompt):
        why.append('input_prompt: varies over the image')
    for name, prompt in attached(model, 'feature_prompts').items():
        module = model.get_submodule(name)
        if prompt.kind != 'bias':
            why.append(f'{name}: a {prompt.kind!r} prompt is a conv')
        elif _bias_conv(module) is None:
            why.append(f'{name}: a {type(module).__name__} that does not '
                       'end in a biased conv (norm / activation / '
                       'residual after it; a fold into the next conv is '
                       'inexact at zero-padded borders)')
        else:
            found[name] = module
    if why:
        raise ValueError('prompts that cannot fold: ' + '; '.join(why))
    for name, module in found.items():
        with torch.no_grad():
            _bias_conv(module).bias.add_(
                model.feature_prompts[name.replace('.', '__')].bias)
        detach(model, 'feature_prompts', name)
    return list(found)
