"""Conv-Adapter: a depth-wise separable bottleneck beside or after a block.

Shapes: N batch, C_in / C_out channels of the adapted module, h the
bottleneck width, H x W feature maps, s the module's stride.

After Conv-Adapter (Chen et al., CVPR-W 2024): ``dw`` (k x k depth-wise,
stride s) -> ``down`` (1x1, C_in -> h) -> activation -> ``up`` (1x1,
h -> C_out). ``up`` starts at zero, so a model with adapters computes
exactly the base model's outputs until training moves it.

- ``placement='parallel'``: ``y = block(x) + adapter(x)`` (the adapter sees
  the block's input, with the block's stride).
- ``placement='sequential'``: ``y = block(x) + adapter(block(x))``.

The adapters live in the model's ``conv_adapters`` ``ModuleDict`` (keyed
by the adapted module's name with ``__`` for dots, so adapting an
``nn.Sequential`` stage does not add a layer to it) and run in forward
hooks on the adapted modules: the base state-dict keys do not change
(base checkpoints load as they are) and the adapters add keys
``conv_adapters.<name>.{dw,down,up}_{weight,bias}``. Their tensors
are plain parameters, so mmengine ``init_cfg`` initialisers (which match
layer classes) never touch the zero ``up``.

Merging (:func:`merge_conv_adapters`) is exact only for a *linear* adapter
(``act=None``) on a plain ``nn.Conv2d``: parallel with the conv's own
kernel size (odd), stride, dilation 1, no groups, zero padding ``k // 2``;
sequential with ``kernel_size=1``. With an activation in the bottleneck,
or on a block with norms / activations / residuals, the adapter is not a
linear map of the conv's input and cannot be folded.
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn

from .attachment import attach, attached, detach, hooked
from .inject import _compile, no_match_error

ADAPTER_CHILD_NAMES = ('conv_adapters', 'feature_prompts', 'input_prompt')
PLACEMENTS = ('parallel', 'sequential')
ACTIVATIONS = {'ReLU': nn.ReLU, 'GELU': nn.GELU, 'SiLU': nn.SiLU}


def is_adapter_param(name: str) -> bool:
    """Whether a parameter name belongs to a LoRA / adapter / prompt.

    Args:
        name (str): A dotted parameter name.

    Returns:
        bool: True for ``lora_A`` / ``lora_B`` and any tensor under a
        ``conv_adapters``, ``feature_prompts`` or ``input_prompt`` child.
    """
    parts = name.split('.')
    return parts[-1] in ('lora_A', 'lora_B') or any(
        p in ADAPTER_CHILD_NAMES for p in parts[:-1])


@MODELS.register_module()
class ConvAdapter(nn.Module):
    """Depth-wise separable bottleneck with a zero-initialised output.

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        bottleneck (int): h, the hidden width. Defaults to 16.
        kernel_size (int): Odd depth-wise kernel size k. Defaults to 3.
        stride (int): s of the depth-wise conv. Defaults to 1.
        act (str, optional): ``'ReLU'``, ``'GELU'``, ``'SiLU'`` or None (a
            linear adapter, mergeable). Defaults to 'ReLU'.
        placement (str): ``'parallel'`` or ``'sequential'``.
            Defaults to 'parallel'.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 bottleneck: int = 16,
                 kernel_size: int = 3,
                 stride: int = 1,
                 act: Optional[str] = 'ReLU',
                 placement: str = 'parallel') -> None:
        super().__init__()
        if not isinstance(bottleneck, int) or bottleneck < 1:
            raise ValueError('conv_adapter bottleneck must be a positive int,'
                             f' got {bottleneck!r}')
        if not isinstance(kernel_size, int) or kernel_size % 2 != 1:
            raise ValueError('conv_adapter kernel_size must be an odd int, '
                             f'got {kernel_size!r}')
        if placement not in PLACEMENTS:
            raise ValueError(f'conv_adapter placement must be one of '
                             f'{PLACEMENTS}, got {placement!r}')
        if act is not None and act not in ACTIVATIONS:
            raise ValueError(f'conv_adapter act must be None or one of '
                             f'{list(ACTIVATIONS)}, got {act!r}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.bottleneck, self.kernel_size = bottleneck, kernel_size
        self.stride, self.act_name, self.placement = stride, act, placement
        k = kernel_size
        self.dw_weight = nn.Parameter(torch.empty(in_channels, 1, k, k))
        self.dw_bias = nn.Parameter(torch.zeros(in_channels))
        self.down_weight = nn.Parameter(
            torch.empty(bottleneck, in_channels, 1, 1))
        self.down_bias = nn.Parameter(torch.zeros(bottleneck))
        self.up_weight = nn.Parameter(
            torch.zeros(out_channels, bottleneck, 1, 1))
        self.up_bias = nn.Parameter(torch.zeros(out_channels))
        self.act = ACTIVATIONS[act]() if act else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal ``dw`` / ``down``, zero biases and ``up``."""
        nn.init.kaiming_normal_(self.dw_weight, mode='fan_out')
        nn.init.kaiming_normal_(self.down_weight, mode='fan_out')
        for p in (self.dw_bias, self.down_bias, self.up_weight,
                  self.up_bias):
            nn.init.zeros_(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / s, W / s)."""
        x = F.conv2d(x, self.dw_weight, self.dw_bias, self.stride,
                     self.kernel_size // 2, groups=self.in_channels)
        x = self.act(F.conv2d(x, self.down_weight, self.down_bias))
        return F.conv2d(x, self.up_weight, self.up_bias)

    def hook(self, module: nn.Module, args: tuple,
             output: torch.Tensor) -> torch.Tensor:
        """Forward hook on the adapted module: add the adapter's output."""
        source = args[0] if self.placement == 'parallel' else output
        return output + self(source)

    def linear_map(self) -> Dict[str, torch.Tensor]:
        """The linear adapter as one dense conv (stride s, pad k // 2).

        Returns:
            dict[str, Tensor]: ``weight`` and ``bias`` of the dense conv
            (stride s, padding k // 2) equal to the adapter.

        Raises:
            ValueError: If the adapter has an activation.
        """
        if self.act_name is not None:
            raise ValueError(f'a ConvAdapter with act={self.act_name!r} is '
                             'not linear and cannot be merged; use act=None')
        ud = (self.up_weight[:, :, 0, 0] @ self.down_weight[:, :, 0, 0])
        weight = ud[:, :, None, None] * self.dw_weight[:, 0][None]
        bias = (ud @ self.dw_bias + self.up_weight[:, :, 0, 0]
                @ self.down_bias + self.up_bias)
        return dict(weight=weight, bias=bias)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, bottleneck='
                f'{self.bottleneck}, k={self.kernel_size}, stride='
                f'{self.stride}, act={self.act_name}, {self.placement}')


def probe_shape(name: str, module: nn.Module) -> List[int]:
    """C_in, C_out and stride of a module that maps one feature map.

    C_in is the first ``nn.Conv2d``'s input channels; C_out and the stride
    come from a forward pass of a (1, C_in, 64, 64) zero tensor in eval
    mode without gradients.

    Args:
        name (str): The module's name, for errors.
        module (nn.Module): The module.

    Returns:
        list[int]: ``[C_in, C_out, stride]``.

    Raises:
        ValueError: If the module has no conv or does not map a
            (N, C, H, W) tensor to one with an integer stride.
    """
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f'{name} ({type(module).__name__}) has no Conv2d; '
                         'adapters and prompts need a conv block')
    c_in, training = convs[0].in_channels, module.training
    param = next(module.parameters())
    try:
        with torch.no_grad():
            out = module.eval()(param.new_zeros(1, c_in, 64, 64))
    except Exception as err:  # noqa: BLE001 - re-raised with the name
        raise ValueError(f'{name} ({type(module).__name__}) does not map one '
                         f'(N, {c_in}, H, W) tensor: {err}') from err
    finally:
        module.train(training)
    if not isinstance(out, torch.Tensor) or out.dim() != 4 or \
            64 % out.shape[-1] or out.shape[-1] != out.shape[-2]:
        raise ValueError(f'{name} ({type(module).__name__}) does not output '
                         'one strided (N, C, H, W) feature map')
    return [c_in, out.shape[1], 64 // out.shape[-1]]


def find_targets(model: nn.Module, pattern: str, what: str) -> List[str]:
    """Names of the modules that ``pattern`` fully matches, in model order.

    Args:
        model (nn.Module): The model.
        pattern (str): A regex (``re.fullmatch`` on dotted names).
        what (str): The config key, for errors.

    Returns:
        list[str]: The matched names.

    Raises:
        ValueError: If nothing matches; the message lists close names.
    """
    regex = _compile(pattern, what)
    names = [n for n, _ in model.named_modules()]
    found = [n for n in names if n and regex.fullmatch(n)
             and not set(n.split('.')) & set(ADAPTER_CHILD_NAMES)]
    if not found:
        raise no_match_error(what, pattern, names)
    return found


def inject_conv_adapters(model: nn.Module,
                         target_modules: str,
                         bottleneck: int = 16,
                         kernel_size: int = 3,
                         act: Optional[str] = 'ReLU',
                         placement: str = 'parallel') -> List[str]:
    """Attach a :class:`ConvAdapter` to every module the regex matches.

    Args:
        model (nn.Module): The built model, changed in place.
        target_modules (str): Regex over whole module names, e.g.
            ``backbone\\.layer[2-7]\\.\\d+`` (MobileNetV2 blocks),
            ``backbone\\.layer[1-4]\\.\\d+`` (ResNet blocks),
            ``neck\\.fpn_convs\\.\\d`` (FPN output convs).
        bottleneck (int): Hidden width h. Defaults to 16.
        kernel_size (int): Depth-wise kernel size. Defaults to 3.
        act (str, optional): Bottleneck activation or None.
            Defaults to 'ReLU'.
        placement (str): ``'parallel'`` or ``'sequential'``.
            Defaults to 'parallel'.

    Returns:
        list[str]: The adapted module names.
    """
    if not isinstance(bottleneck, int) or bottleneck < 1:
        raise ValueError('conv_adapter bottleneck must be a positive int, '
                         f'got {bottleneck!r}')
    targets = find_targets(model, target_modules,
                           'conv_adapter.target_modules')
    for name in targets:
        module = model.get_submodule(name)
        c_in, c_out, stride = probe_shape(name, module)
        if placement == 'sequential':
            c_in, stride = c_out, 1
        adapter = ConvAdapter(c_in, c_out, bottleneck, kernel_size, stride,
                              act, placement)
        attach(model, 'conv_adapters', name,
               adapter.to(next(module.parameters()).device))
    return targets


def _mergeable(name: str, module: nn.Module, ad: ConvAdapter) -> str:
    """Why ``ad`` on ``module`` cannot merge ('' if it can)."""
    if ad.act_name is not None:
        return f'{name}: act={ad.act_name!r} (nonlinear bottleneck)'
    if type(module) is not nn.Conv2d:
        return f'{name}: a {type(module).__name__}, not a plain Conv2d'
    if module.bias is None and any(
            p.abs().sum() > 0 for p in (ad.dw_bias, ad.down_bias, ad.up_bias)):
        return f'{name}: the conv has no bias to take the adapter\'s bias'
    k = module.kernel_size
    if ad.placement == 'sequential':
        if ad.kernel_size != 1:
            return (f'{name}: sequential with kernel_size {ad.kernel_size} '
                    '(a conv of a conv has a larger kernel and other '
                    'borders)')
        # (I + M) W mixes output channels across the conv's groups, which
        # a grouped (or depthwise) conv cannot hold
        return '' if module.groups == 1 else (
            f'{name}: sequential on a conv with groups={module.groups} (the '
            '1x1 map mixes its groups)')
    same = (k == (ad.kernel_size, ) * 2 and module.stride == (ad.stride, ) * 2
            and module.padding == (ad.kernel_size // 2, ) * 2
            and module.dilation == (1, 1) and module.groups == 1
            and module.padding_mode == 'zeros')
    return '' if same else (f'{name}: the conv\'s geometry differs from the '
                            'adapter\'s (kernel, stride, padding, groups)')


def merge_conv_adapters(model: nn.Module) -> List[str]:
    """Fold every linear adapter on a plain conv into its weight, in place.

    Parallel: ``W' = W + W_a``, ``b' = b + b_a``. Sequential (k = 1, a
    1x1 map M plus identity): ``W' = (I + M) W``, ``b' = (I + M) b + b_a``.
    Merge LoRA first (:func:`merge_lora`): a LoRA conv is not plain. A conv
    that ``peft`` wrapped after the adapter came is folded in its base
    layer, so merge these before :func:`merge_hf_peft`.

    Args:
        model (nn.Module): The model, changed in place.

    Returns:
        list[str]: Names of the convs that absorbed an adapter.

    Raises:
        ValueError: Listing every adapter that cannot merge and why (the
            model is unchanged then).
    """
    found = attached(model, 'conv_adapters')
    why = [w for w in (_mergeable(n, hooked(model, n, ad), ad)
                       for n, ad in found.items()) if w]
    if why:
        raise ValueError('conv adapters that cannot merge: ' + '; '.join(why))
    for name, adapter in found.items():
        _fold(hooked(model, name, adapter), adapter)
        detach(model, 'conv_adapters', name)
    return list(found)


@torch.no_grad()
def _fold(conv: nn.Conv2d, ad: ConvAdapter) -> None:
    lin = ad.linear_map()
    weight = conv.weight
    bias = conv.bias if conv.bias is not None else weight.new_zeros(
        conv.out_channels)
    if ad.placement == 'parallel':
        new_w, new_b = weight + lin['weight'], bias + lin['bias']
    else:
        m = torch.eye(conv.out_channels, dtype=weight.dtype,
                      device=weight.device) + lin['weight'][:, :, 0, 0]
        new_w = torch.einsum('oc,cikl->oikl', m, weight)
        new_b = m @ bias + lin['bias']
    conv.weight.data.copy_(new_w)
    if conv.bias is not None:
        conv.bias.data.copy_(new_b)
