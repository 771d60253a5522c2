"""torchvision classification networks as mmdet backbones.

Shapes: N images, input ``(N, 3, H, W)``; stage ``i`` (0-3) outputs
``(N, C_i, H / 2 ** (i + 2), W / 2 ** (i + 2))``, as mmdet's ``ResNet``
with ``out_indices=(0, 1, 2, 3)``.

The network's feature layers are split into a stem (stride <= 2) and four
stages ending at strides 4, 8, 16 and 32. The split is found by running a
64x64 dummy image through the layers once, so any torchvision family whose
layers form a sequence works: ResNet / ResNeXt / Wide ResNet (stem +
``layer1``-``layer4``), MobileNetV2/V3, EfficientNet, ConvNeXt
(``features``) and RegNet (``stem`` + ``trunk_output``).
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import torch
import torchvision
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from rcnn_plugin.models.utils.offline_weights import find_weights_file
from rcnn_plugin.utils.checkpoint import load_checkpoint_safely


def _layer_names(model: nn.Module, name: str) -> List[List[str]]:
    """Feature layers of ``model`` in order, each a list of submodules."""
    if hasattr(model, 'layer4'):  # ResNet family
        return [['conv1', 'bn1', 'relu'], ['maxpool'],
                *[[f'layer{i}'] for i in range(1, 5)]]
    if hasattr(model, 'trunk_output'):  # RegNet
        return [['stem'], *[[f'trunk_output.{n}']
                            for n, _ in model.trunk_output.named_children()]]
    if hasattr(model, 'features'):
        return [[f'features.{n}'] for n, _ in model.features.named_children()]
    raise ValueError(f'torchvision model {name!r}: no ResNet layers, '
                     'RegNet trunk or features sequence to split')


@MODELS.register_module()
class TorchvisionBackbone(BaseModule):
    """A torchvision classification model split into four stages.

    Args:
        name (str): torchvision model name, e.g. ``'resnet50'``,
            ``'mobilenet_v3_large'``, ``'efficientnet_b0'``,
            ``'convnext_tiny'``, ``'regnet_y_400mf'``.
        out_indices (Sequence[int]): Stages to output, 0-3 for strides 4,
            8, 16, 32. Defaults to (0, 1, 2, 3).
        frozen_stages (int): -1 freezes nothing; ``k >= 0`` freezes the
            stem and stages ``0 .. k - 1`` (mmdet's ResNet convention: 1
            freezes the stem and ``layer1``). Defaults to -1.
        norm_eval (bool): Keep BatchNorm layers in eval mode while
            training. Defaults to False.
        out_layers (Sequence[str], optional): Output these layers (names
            inside the torchvision model, e.g. ``['features.13',
            'features.16']``) instead of ``out_indices``. Defaults to None.
        norm_eps (float, optional): Set every BatchNorm's ``eps`` (e.g.
            1e-5 for torchvision detectors built with FrozenBatchNorm2d,
            whose MobileNetV3 would otherwise use 1e-3). Defaults to None.
        weights (str, optional): None (random), a torchvision weights name
            (``'IMAGENET1K_V1'``, ``'DEFAULT'``) looked up in the torch hub
            cache and the offline packages, never downloaded, or a file
            path. Loaded by ``init_weights``. Defaults to None.
        init_cfg (dict, optional): mmengine init config. Defaults to None.
    """

    def __init__(self,
                 name: str,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 out_layers: Optional[Sequence[str]] = None,
                 norm_eps: Optional[float] = None,
                 weights: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if name not in torchvision.models.list_models(torchvision.models):
            raise ValueError(f'{name!r} is not a torchvision classification '
                             'model; see torchvision.models.list_models()')
        if not out_indices or not set(out_indices) <= {0, 1, 2, 3}:
            raise ValueError(f'out_indices must be a non-empty subset of '
                             f'(0, 1, 2, 3), got {out_indices}')
        if not -1 <= frozen_stages <= 4:
            raise ValueError(f'frozen_stages must be in [-1, 4], got '
                             f'{frozen_stages}')
        self.name = name
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.weights = weights
        self.tv = torchvision.models.get_model(name, weights=None)
        if norm_eps is not None:
            for m in self.tv.modules():
                if isinstance(m, _BatchNorm):
                    m.eps = norm_eps
        self._channels = {}
        self.stages, self.out_channels = self._split(_layer_names(self.tv,
                                                                  name))
        unknown = [n for n in out_layers or [] if n not in self._channels]
        if unknown:
            raise ValueError(f'{name}: out_layers {unknown} are not among '
                             f'its layers {list(self._channels)}')
        # in forward order, whatever order they were given in
        self.out_layers = [n for n in self._channels if n in (out_layers or
                                                                [])]
        if self.out_layers:
            self.out_channels = [self._channels[n] for n in self.out_layers]
        used = {n.split('.')[0] for names in self.stages for n in names}
        self._unused = [c for c, _ in self.tv.named_children()
                        if c not in used]
        for child in self._unused:  # classifier, pooling: no parameters
            setattr(self.tv, child, nn.Identity())
        self._freeze()

    @torch.no_grad()
    def _split(self, layers: List[List[str]]
               ) -> Tuple[List[List[str]], List[int]]:
        """Group layers into stem + 4 stages with a dummy forward."""
        was_training = self.tv.training
        self.tv.eval()
        x, size = torch.zeros(1, 3, 64, 64), 64
        stages: List[List[str]] = [[] for _ in range(5)]
        channels = [0] * 4
        for names in layers:
            for n in names:
                x = self.tv.get_submodule(n)(x)
            stride = size // x.shape[-1]
            level = {1: 0, 2: 0, 4: 1, 8: 2, 16: 3, 32: 4}.get(stride)
            if level is None:
                raise ValueError(f'{self.name}: layer {names} has stride '
                                 f'{stride}; expected 2 to 32')
            stages[level] += names
            self._channels[names[-1]] = x.shape[1]
            if level:
                channels[level - 1] = x.shape[1]
        self.tv.train(was_training)
        if not all(stages[1:]):
            raise ValueError(f'{self.name}: no layer at some of the strides '
                             '4, 8, 16, 32')
        return stages, channels

    def _freeze(self) -> None:
        for names in self.stages[:self.frozen_stages + 1]:
            for n in names:
                module = self.tv.get_submodule(n)
                module.eval()
                for p in module.parameters():
                    p.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run the stages.

        Args:
            x (Tensor): Images ``(N, 3, H, W)``.

        Returns:
            tuple[Tensor]: One map per ``out_indices`` entry.
        """
        outs = []
        for level, names in enumerate(self.stages):
            for n in names:
                x = self.tv.get_submodule(n)(x)
                if n in self.out_layers:
                    outs.append(x)
            if not self.out_layers and level - 1 in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'TorchvisionBackbone':
        """Set train mode, keeping frozen stages and (``norm_eval``) BN in
        eval mode.

        Args:
            mode (bool): Train mode. Defaults to True.

        Returns:
            TorchvisionBackbone: self.
        """
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def weights_path(self) -> str:
        """Local file of ``weights``: the path itself, or the torchvision
        file found offline.

        Returns:
            str: An existing path.

        Raises:
            FileNotFoundError: Naming the expected path(s) and how to get
                the file.
            ValueError: If ``weights`` names no torchvision weights.
        """
        if osp.sep in self.weights or self.weights.endswith('.pth'):
            if not osp.isfile(self.weights):
                raise FileNotFoundError(
                    f'{self.name} weights: {self.weights} does not exist')
            return self.weights
        enum = torchvision.models.get_model_weights(self.name)
        try:
            entry = enum[self.weights]
        except KeyError:
            raise ValueError(
                f'{self.name} has no weights {self.weights!r}; known: '
                f'{["DEFAULT", *enum.__members__]}') from None
        file_name = osp.basename(entry.url)
        return find_weights_file(file_name, f'{self.name} {self.weights}')

    def init_weights(self) -> None:
        """Load ``weights`` (if set) after mmengine's own init."""
        super().init_weights()
        if self.weights is None:
            return
        path = self.weights_path()
        state_dict = load_checkpoint_safely(path, map_location='cpu')
        state_dict = state_dict.get('state_dict', state_dict)
        state_dict = {k[3:] if k.startswith('tv.') else k: v
                      for k, v in state_dict.items()}
        from rcnn_plugin.models.peft.conv_adapter import is_adapter_param
        missing, unexpected = self.tv.load_state_dict(state_dict,
                                                      strict=False)
        # LoRA injected into the backbone (PEFTDetector) adds its own keys,
        # which no ImageNet file has.
        missing = [k for k in missing if not is_adapter_param(k)]
        if missing:
            raise ValueError(f'{path} lacks {len(missing)} keys of '
                             f'{self.name}, e.g. {missing[:3]}')
        # the classifier's keys have nowhere to go; any other key means
        # weights of another model (a deeper one of the family loads its
        # first blocks and drops the rest)
        unexpected = [k for k in unexpected
                      if k.split('.')[0] not in self._unused]
        if unexpected:
            raise ValueError(f'{path} has {len(unexpected)} keys that '
                             f'{self.name} lacks, e.g. {unexpected[:3]}: '
                             'the weights of another model?')
