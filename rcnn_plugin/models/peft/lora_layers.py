"""LoRA layers for ``nn.Conv2d`` and ``nn.Linear``.

Shapes: N batch, C_in / C_out channels, H x W feature maps, r the rank,
g the convolution groups.

A LoRA layer *is* the layer it wraps (a subclass): its frozen ``weight`` and
``bias`` keep their state-dict keys, so base checkpoints load unchanged, and
the low-rank update adds the keys ``lora_A`` and ``lora_B``. ``lora_A`` and
``lora_B`` are plain parameters, not sub-layers, so mmengine's
``init_cfg`` initialisers (which match layers by class name, e.g.
``layer='Conv2d'``) never touch them and the zero-initialised ``lora_B``
stays zero until training moves it.

For a convolution, the down projection ``lora_A`` is a convolution with the
base layer's kernel, stride, padding, dilation, padding mode and groups, to
``g * r`` channels; the up projection ``lora_B`` is a grouped 1x1
convolution back to ``C_out``. Both are linear, so the update folds exactly
into the base weight (:meth:`LoRAConv2d.merged_weight`).
"""
import math
from typing import Union

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import wrappers as mmcv_wrappers
from mmdet.registry import MODELS
from torch import nn

# Layers whose forward is exactly F.conv2d / F.linear with their weight:
# only these can take a LoRA update that merges back into the weight.
PLAIN_CONV_TYPES = (nn.Conv2d, mmcv_wrappers.Conv2d)
PLAIN_LINEAR_TYPES = (nn.Linear, mmcv_wrappers.Linear)


def _check_lora_args(rank: int, alpha: float, dropout: float) -> None:
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f'LoRA rank must be a positive int, got {rank!r}')
    if alpha <= 0:
        raise ValueError(f'LoRA alpha must be > 0, got {alpha!r}')
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f'LoRA dropout must be in [0, 1), got {dropout!r}')


class _FreezeBaseMixin:

    def freeze_base(self) -> None:
        """Stop gradients to the base ``weight`` and ``bias``."""
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)


@MODELS.register_module()
class LoRAConv2d(_FreezeBaseMixin, nn.Conv2d):
    """A frozen ``nn.Conv2d`` plus a trainable low-rank update.

    ``y = conv(x; W, b) + alpha / r * up(down(dropout(x)))``, where ``down``
    has ``W``'s geometry and ``g * r`` output channels and ``up`` is a 1x1
    convolution with ``g`` groups, so each group gets a rank-r update.
    ``lora_B`` starts at zero: the layer's output equals the base layer's
    until ``lora_B`` is trained.

    Build one with :meth:`from_conv`, which shares the base tensors.

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_size (int | tuple[int, int]): Kernel size.
        rank (int): r, per group. Defaults to 8.
        alpha (float): Scale numerator, the update is scaled by alpha / r.
            Defaults to 16.
        dropout (float): Dropout on the LoRA branch's input. Defaults to 0.
        **kwargs: ``stride``, ``padding``, ``dilation``, ``groups``,
            ``bias``, ``padding_mode`` of ``nn.Conv2d``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Union[int, tuple],
                 rank: int = 8,
                 alpha: float = 16,
                 dropout: float = 0.0,
                 **kwargs) -> None:
        _check_lora_args(rank, alpha, dropout)
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.rank, self.alpha = rank, alpha
        self.scaling = alpha / rank
        g = self.groups
        kh, kw = self.kernel_size
        self.lora_A = nn.Parameter(
            self.weight.new_empty(g * rank, in_channels // g, kh, kw))
        self.lora_B = nn.Parameter(
            self.weight.new_zeros(out_channels, rank, 1, 1))
        self.lora_dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.reset_lora_parameters()
        self.freeze_base()

    def reset_lora_parameters(self) -> None:
        """Kaiming-uniform ``lora_A`` (as ``nn.Conv2d``), zero ``lora_B``."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    @classmethod
    def from_conv(cls,
                  conv: nn.Conv2d,
                  rank: int = 8,
                  alpha: float = 16,
                  dropout: float = 0.0) -> 'LoRAConv2d':
        """Wrap ``conv``; the result shares its ``weight`` and ``bias``.

        Args:
            conv (nn.Conv2d): A plain convolution (any stride, padding,
                dilation, groups or padding mode).
            rank (int): r, per group. Defaults to 8.
            alpha (float): The update is scaled by alpha / r. Defaults to 16.
            dropout (float): Dropout on the LoRA input. Defaults to 0.

        Returns:
            LoRAConv2d: The wrapped layer, on ``conv``'s device and dtype.
        """
        with torch.device('meta'):
            layer = cls(
                conv.in_channels, conv.out_channels, conv.kernel_size,
                rank=rank, alpha=alpha, dropout=dropout, stride=conv.stride,
                padding=conv.padding, dilation=conv.dilation,
                groups=conv.groups, bias=conv.bias is not None,
                padding_mode=conv.padding_mode)
        layer.weight = conv.weight
        layer.bias = conv.bias
        kh, kw = conv.kernel_size
        g = conv.groups
        layer.lora_A = nn.Parameter(conv.weight.new_empty(
            g * rank, conv.in_channels // g, kh, kw))
        layer.lora_B = nn.Parameter(
            conv.weight.new_zeros(conv.out_channels, rank, 1, 1))
        layer.reset_lora_parameters()
        layer.freeze_base()
        layer.train(conv.training)
        return layer

    def lora_delta(self, x: torch.Tensor) -> torch.Tensor:
        """The scaled update: (N, C_in, H, W) -> (N, C_out, H', W')."""
        down = self._conv_forward(self.lora_dropout(x), self.lora_A, None)
        return F.conv2d(down, self.lora_B, groups=self.groups) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H', W').

        Without dropout the update is linear in ``x``, so one convolution
        with :meth:`merged_weight` gives the same output (to float
        rounding), and the weight gradient reaches ``lora_A`` and
        ``lora_B`` through it. On CPU a forward and backward this way takes
        about 0.5-0.6x the time of the base convolution plus the two LoRA
        passes (whose memory-bound passes over full-size feature maps cost
        more than their FLOPs suggest). With dropout the two passes are
        needed.
        """
        if isinstance(self.lora_dropout, nn.Identity):
            return self._conv_forward(x, self.merged_weight(), self.bias)
        return super().forward(x) + self.lora_delta(x)

    def merged_weight(self) -> torch.Tensor:
        """``W + alpha / r * B @ A`` per group, shaped like ``weight``."""
        g, r = self.groups, self.rank
        out_g = self.out_channels // g
        a = self.lora_A.reshape(g, r, -1)  # (g, r, C_in/g * kh * kw)
        b = self.lora_B.reshape(g, out_g, r)  # (g, C_out/g, r)
        delta = torch.bmm(b, a).reshape(self.weight.shape)
        return self.weight + delta * self.scaling

    def to_plain(self) -> nn.Conv2d:
        """An ``nn.Conv2d`` with the merged weight and the same geometry.

        Returns:
            nn.Conv2d: The merged layer; its parameters require gradients.
        """
        with torch.device('meta'):
            conv = nn.Conv2d(
                self.in_channels, self.out_channels, self.kernel_size,
                stride=self.stride, padding=self.padding,
                dilation=self.dilation, groups=self.groups,
                bias=self.bias is not None, padding_mode=self.padding_mode)
        conv.weight = nn.Parameter(self.merged_weight().detach().clone())
        if self.bias is not None:
            conv.bias = nn.Parameter(self.bias.detach().clone())
        conv.train(self.training)
        return conv

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, lora_rank={self.rank}, ' \
               f'lora_alpha={self.alpha}'


@MODELS.register_module()
class LoRALinear(_FreezeBaseMixin, nn.Linear):
    """A frozen ``nn.Linear`` plus a trainable low-rank update.

    ``y = x W^T + b + alpha / r * dropout(x) A^T B^T`` for (..., C_in)
    inputs; ``lora_A`` is (r, C_in), ``lora_B`` is (C_out, r) and starts at
    zero. Build one with :meth:`from_linear`.

    Args:
        in_features (int): C_in.
        out_features (int): C_out.
        rank (int): r. Defaults to 8.
        alpha (float): The update is scaled by alpha / r. Defaults to 16.
        dropout (float): Dropout on the LoRA input. Defaults to 0.
        bias (bool): Whether the base layer has a bias. Defaults to True.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 rank: int = 8,
                 alpha: float = 16,
                 dropout: float = 0.0,
                 bias: bool = True) -> None:
        _check_lora_args(rank, alpha, dropout)
        super().__init__(in_features, out_features, bias=bias)
        self.rank, self.alpha = rank, alpha
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(self.weight.new_empty(rank, in_features))
        self.lora_B = nn.Parameter(self.weight.new_zeros(out_features, rank))
        self.lora_dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.reset_lora_parameters()
        self.freeze_base()

    def reset_lora_parameters(self) -> None:
        """Kaiming-uniform ``lora_A`` (as ``nn.Linear``), zero ``lora_B``."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    @classmethod
    def from_linear(cls,
                    linear: nn.Linear,
                    rank: int = 8,
                    alpha: float = 16,
                    dropout: float = 0.0) -> 'LoRALinear':
        """Wrap ``linear``; the result shares its ``weight`` and ``bias``.

        Args:
            linear (nn.Linear): A plain linear layer.
            rank (int): r. Defaults to 8.
            alpha (float): The update is scaled by alpha / r. Defaults to 16.
            dropout (float): Dropout on the LoRA input. Defaults to 0.

        Returns:
            LoRALinear: The wrapped layer, on ``linear``'s device and dtype.
        """
        with torch.device('meta'):
            layer = cls(linear.in_features, linear.out_features, rank=rank,
                        alpha=alpha, dropout=dropout,
                        bias=linear.bias is not None)
        layer.weight = linear.weight
        layer.bias = linear.bias
        layer.lora_A = nn.Parameter(
            linear.weight.new_empty(rank, linear.in_features))
        layer.lora_B = nn.Parameter(
            linear.weight.new_zeros(linear.out_features, rank))
        layer.reset_lora_parameters()
        layer.freeze_base()
        layer.train(linear.training)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C_in) -> (..., C_out)."""
        delta = F.linear(F.linear(self.lora_dropout(x), self.lora_A),
                         self.lora_B)
        return super().forward(x) + delta * self.scaling

    def merged_weight(self) -> torch.Tensor:
        """``W + alpha / r * B @ A``, shaped (C_out, C_in)."""
        return self.weight + self.lora_B @ self.lora_A * self.scaling

    def to_plain(self) -> nn.Linear:
        """An ``nn.Linear`` with the merged weight.

        Returns:
            nn.Linear: The merged layer; its parameters require gradients.
        """
        with torch.device('meta'):
            linear = nn.Linear(self.in_features, self.out_features,
                               bias=self.bias is not None)
        linear.weight = nn.Parameter(self.merged_weight().detach().clone())
        if self.bias is not None:
            linear.bias = nn.Parameter(self.bias.detach().clone())
        linear.train(self.training)
        return linear

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, lora_rank={self.rank}, ' \
               f'lora_alpha={self.alpha}'
