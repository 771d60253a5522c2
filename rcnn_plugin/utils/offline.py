"""Offline-first weights: never a silent download (mmdet #12001).

Two parts:

- :func:`register_offline_remote_schemes` (run when ``rcnn_plugin`` is
  imported) replaces mmengine's loaders for ``http(s)://``,
  ``torchvision://``, ``modelzoo://``, ``open-mmlab://`` and ``mmcls://``
  (``pavi://`` needs a private client and is left alone): a file already
  in the torch hub cache is loaded from there; otherwise the loader raises a
  ``FileNotFoundError`` saying where the file must go and how to get it on a
  machine with network. ``RCNN_PLUGIN_ALLOW_DOWNLOADS=1`` restores
  mmengine's downloading loaders.
- :func:`prepare_offline` (run by ``tools/train.py``) drops ``Pretrained``
  ``init_cfg`` entries that point at remote URLs when ``load_from`` or
  ``resume`` is set: those weights are overwritten by the checkpoint anyway,
  so fetching them is pointless and fails offline.
"""
import os
import os.path as osp
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlparse

import torch
from mmengine.logging import print_log
from mmengine.runner import checkpoint as mm_ckpt

from .checkpoint import load_checkpoint_safely
from .config_types import cfg_type_name

ALLOW_ENV = 'RCNN_PLUGIN_ALLOW_DOWNLOADS'
REMOTE_PREFIXES = ('http://', 'https://', 'torchvision://', 'modelzoo://',
                   'open-mmlab://', 'openmmlab://', 'mmcls://', 'pavi://')


def is_remote(checkpoint: Any) -> bool:
    """Whether a checkpoint name would be fetched over the network.

    Args:
        checkpoint (Any): ``init_cfg['checkpoint']`` or ``load_from``.

    Returns:
        bool: True for the URL schemes in :data:`REMOTE_PREFIXES`.
    """
    return isinstance(checkpoint, str) and checkpoint.startswith(
        REMOTE_PREFIXES)


def resolve_url(filename: str) -> Optional[str]:
    """The http(s) URL behind a checkpoint name, as mmengine resolves it.

    Args:
        filename (str): e.g. ``'torchvision://resnet50'``.

    Returns:
        str | None: The URL, or None when the name maps to a local file
        (some ``open-mmlab://`` entries) or the scheme is not handled here.

    Raises:
        KeyError: If the model name is unknown to mmengine.
    """
    if filename.startswith(('http://', 'https://')):
        return filename
    if filename.startswith(('torchvision://', 'modelzoo://')):
        name = filename.split('://', 1)[1]
        return mm_ckpt.get_torchvision_models()[name]
    if filename.startswith('mmcls://'):
        return mm_ckpt.get_mmcls_models()[filename[len('mmcls://'):]]
    if filename.startswith(('open-mmlab://', 'openmmlab://')):
        name = filename.split('://', 1)[1]
        name = mm_ckpt.get_deprecated_model_names().get(name, name)
        url = mm_ckpt.get_external_models()[name]
        return url if url.startswith(('http://', 'https://')) else None
    return None


def cached_path(url: str) -> str:
    """Where ``torch.hub`` (and mmengine's ``load_url``) caches ``url``.

    Args:
        url (str): http(s) URL.

    Returns:
        str: ``$TORCH_HOME/hub/checkpoints/<file name>``.
    """
    return osp.join(torch.hub.get_dir(), 'checkpoints',
                    osp.basename(urlparse(url).path))


def load_remote_offline(filename: str,
                        map_location: Optional[Any] = None) -> Any:
    """mmengine loader for remote schemes that only reads the local cache.

    Args:
        filename (str): A remote checkpoint name.
        map_location (Any, optional): Same as :func:`torch.load`.

    Returns:
        Any: The loaded checkpoint.

    Raises:
        FileNotFoundError: If the file is not in the cache, with the path
            and the command to fetch it elsewhere.
    """
    original = _ORIGINAL_LOADERS[_prefix_of(filename)]
    if os.environ.get(ALLOW_ENV) == '1':
        return original(filename, map_location)
    url = resolve_url(filename)
    if url is None:  # a local file behind an open-mmlab:// name
        return original(filename, map_location)
    path = cached_path(url)
    if osp.isfile(path):
        ckpt = load_checkpoint_safely(path, map_location)
        if filename.startswith('mmcls://'):  # as mmengine's loader does
            ckpt = mm_ckpt._process_mmcls_checkpoint(ckpt)
        return ckpt
    raise FileNotFoundError(
        f'{filename} is not in the local cache ({path}) and this plugin '
        'never downloads at run time. Either (1) on a machine with network '
        f'run `python -c "import torch; torch.hub.load_state_dict_from_url('
        f'\'{url}\')"` and copy {osp.basename(path)} to {path}; or (2) '
        'when you fine-tune from a full checkpoint (load_from), set the '
        'init_cfg that names it to None (tools/train.py does this for you); '
        'or (3) for ImageNet MobileNetV2 use '
        "checkpoint='offline-torchvision://mobilenet_v2'. Set "
        f'{ALLOW_ENV}=1 to allow downloads.')


_SCHEMES = (('http://', 'https://'), ('torchvision://', 'modelzoo://'),
            ('open-mmlab://', 'openmmlab://'), ('mmcls://', ))
_ORIGINAL_LOADERS: Dict[str, Callable] = {}


def _prefix_of(filename: str) -> str:
    return next(p for group in _SCHEMES for p in group
                if filename.startswith(p))


def register_offline_remote_schemes() -> None:
    """Route remote checkpoint schemes through :func:`load_remote_offline`.

    mmengine's own loaders are kept for ``RCNN_PLUGIN_ALLOW_DOWNLOADS=1``.
    """
    for group in _SCHEMES:
        for prefix in group:
            loader = mm_ckpt.CheckpointLoader._schemes.get(prefix)
            if loader is not None and loader is not load_remote_offline:
                _ORIGINAL_LOADERS[prefix] = loader
        mm_ckpt.CheckpointLoader.register_scheme(
            prefixes=group, loader=load_remote_offline, force=True)


def strip_remote_pretrained(cfg: Any, path: str = 'model') -> List[str]:
    """Remove ``Pretrained`` init configs with remote checkpoints, in place.

    Args:
        cfg (Any): A (nested) model config: dicts and lists.
        path (str): Name of ``cfg`` in messages. Defaults to 'model'.

    Returns:
        list[str]: ``'<path>.init_cfg: <checkpoint>'`` for each removal.
    """
    removed = []
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        inits = init if isinstance(init, list) else [init]
        keep = [i for i in inits if not (
            # mmengine registers the class PretrainedInit as 'Pretrained'.
            cfg_type_name(i) in ('Pretrained', 'PretrainedInit')
            and is_remote(i.get('checkpoint')))]
        removed += [f'{path}.init_cfg: {i["checkpoint"]}' for i in inits
                    if i is not None and i not in keep]
        if len(keep) != len(inits):
            cfg['init_cfg'] = keep if isinstance(init, list) else None
        for key, value in cfg.items():
            if key != 'init_cfg':
                removed += strip_remote_pretrained(value, f'{path}.{key}')
    elif isinstance(cfg, list):
        for i, value in enumerate(cfg):
            removed += strip_remote_pretrained(value, f'{path}[{i}]')
    return removed


def prepare_offline(cfg: Any) -> List[str]:
    """Drop remote ``Pretrained`` inits when a checkpoint will be loaded.

    A checkpoint will be loaded when ``load_from`` is set, or ``resume``
    is and the work dir holds a ``last_checkpoint`` (mmengine's rule;
    without one it trains from the start, and needs the inits).

    Args:
        cfg (Config | dict): The full config; changed in place when a
            checkpoint will be loaded.

    Returns:
        list[str]: What was removed (also logged).
    """
    if not cfg.get('load_from'):
        work_dir = cfg.get('work_dir')
        if not (cfg.get('resume') and work_dir
                and mm_ckpt.find_latest_checkpoint(work_dir)):
            return []
    removed = strip_remote_pretrained(cfg['model'])
    for item in removed:
        print_log(f'load_from/resume is set: skipping {item} (it would be '
                  'overwritten and may need the network)', logger='current')
    return removed
