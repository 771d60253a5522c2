"""Offline safety: weights that would be downloaded on a machine without
network.

mmengine downloads ``torchvision://``, ``open-mmlab://``, ``mmcls://`` and
``http(s)://`` checkpoints into the torch hub cache
(``$TORCH_HOME/hub/checkpoints``) on first use. Without network that
fails, or hangs, after the model is built. This check finds every such
reference in ``model`` (any ``init_cfg`` or ``pretrained``) and
``load_from`` and looks for the cached file.

Whether the machine has network is probed once per host with a TCP
connection of at most :data:`PROBE_TIMEOUT` seconds, run in a daemon thread
so that a hanging DNS lookup cannot block. ``RCNN_PLUGIN_OFFLINE=1`` (or
``0``) skips the probe.
"""
import os
import os.path as osp
import socket
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

import torch

from rcnn_plugin.utils import offline

from .context import DoctorContext
from .finding import Finding

__all__ = ['OFFLINE_ENV', 'PROBE_TIMEOUT', 'cached_file', 'check_offline',
           'has_network', 'iter_weight_refs', 'resolve_url']

OFFLINE_ENV = 'RCNN_PLUGIN_OFFLINE'
PROBE_TIMEOUT = 1.5
_probes: Dict[str, bool] = {}


def has_network(host: str = 'download.openmmlab.com',
                timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to ``host:443`` opens within ``timeout``.

    ``$RCNN_PLUGIN_OFFLINE`` = ``1`` / ``0`` answers without probing. The
    answer is cached per host for the process.

    Args:
        host (str): Host name to reach. Defaults to
            ``'download.openmmlab.com'``.
        timeout (float): Seconds to wait, DNS lookup included. Defaults
            to :data:`PROBE_TIMEOUT`.

    Returns:
        bool: True if the host is reachable.
    """
    forced = os.environ.get(OFFLINE_ENV, '').strip().lower()
    if forced in ('1', 'true', 'yes'):
        return False
    if forced in ('0', 'false', 'no'):
        return True
    if host not in _probes:
        result = [False]

        def probe() -> None:
            try:
                socket.create_connection((host, 443), timeout=timeout).close()
                result[0] = True
            except OSError:
                pass

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        thread.join(timeout)
        _probes[host] = result[0]
    return _probes[host]


def resolve_url(ref: str) -> Optional[str]:
    """The URL mmengine downloads for a checkpoint reference.

    Args:
        ref (str): ``torchvision://NAME``, ``open-mmlab://NAME``,
            ``mmcls://NAME``, an ``http(s)://`` URL or anything else.

    Returns:
        str | None: The URL, or None for local paths, other schemes
        (``offline-torchvision://``) and unknown names.
    """
    try:
        return offline.resolve_url(ref)
    except KeyError:
        return None


def cached_file(ref: str) -> Optional[str]:
    """Path of the torch hub cache copy of a remote checkpoint, if present.

    Args:
        ref (str): A checkpoint reference (see :func:`resolve_url`).

    Returns:
        str | None: The cached file, or None.
    """
    url = resolve_url(ref)
    if url is None:
        return None
    path = offline.cached_path(url)
    return path if osp.isfile(path) else None


def iter_weight_refs(cfg: Any, key: str) -> Iterator[Tuple[str, str]]:
    """Yield (config key, reference) of every checkpoint a model config
    loads: ``init_cfg.checkpoint`` and ``pretrained`` at any depth.

    Args:
        cfg (Any): ``cfg.model`` or any part of it.
        key (str): Its dotted key, e.g. ``'model'``.

    Yields:
        tuple[str, str]: E.g. ``('model.backbone.init_cfg.checkpoint',
        'torchvision://resnet50')``.
    """
    if isinstance(cfg, dict):
        for name, value in cfg.items():
            sub = f'{key}.{name}'
            if name in ('checkpoint', 'pretrained') and isinstance(
                    value, str) and ('init_cfg' in key or name ==
                                     'pretrained'):
                yield sub, value
            else:
                yield from iter_weight_refs(value, sub)
    elif isinstance(cfg, (list, tuple)):
        for i, item in enumerate(cfg):
            yield from iter_weight_refs(item, f'{key}[{i}]')


def _check_ref(key: str, ref: str) -> Optional[Finding]:
    """A finding for one checkpoint reference, or None if it is local."""
    from rcnn_plugin.models.utils.offline_weights import (
        SCHEME,
        find_offline_weights,
    )
    if ref.startswith(SCHEME):
        try:
            find_offline_weights(ref[len(SCHEME):])
        except (KeyError, FileNotFoundError) as err:
            return Finding('offline', 'error', str(err).splitlines()[0],
                           f'install the weights or change {key}', key)
        return None
    url = resolve_url(ref)
    if '://' not in ref:
        if osp.isfile(osp.expanduser(ref)):
            return None
        return Finding('offline', 'error',
                       f'{key} = {ref!r}: no such file',
                       f'fix the path in {key}', key)
    if url is None:
        return Finding('offline', 'warning',
                       f'{key} = {ref!r}: unknown scheme or name, cannot '
                       'tell whether it is available offline',
                       f'use a local path in {key}', key)
    if cached_file(ref) is not None:
        return None
    cache = osp.join(torch.hub.get_dir(), 'checkpoints')
    if has_network(urlparse(url).hostname or ''):
        return Finding('offline', 'info',
                       f'{key} will be downloaded from {url} at start',
                       f'pre-fetch it into {cache} for offline runs', key)
    return Finding(
        'offline', 'error',
        f'{key} = {ref!r} is not in the local cache and this machine has '
        f'no network: loading it fails (or hangs) after the model is built',
        f'copy {osp.basename(urlparse(url).path)} into {cache}, or set '
        f'{key} to a local file (or None to train from scratch)', key)


def check_offline(ctx: DoctorContext) -> List[Finding]:
    """Find checkpoints that cannot be loaded on this machine.

    Args:
        ctx (DoctorContext): The config.

    Returns:
        list[Finding]: An error per remote checkpoint that is neither cached
        nor downloadable (and per missing local file); an info per remote
        checkpoint that will be downloaded.
    """
    refs = list(iter_weight_refs(ctx.cfg.model, 'model'))
    if ctx.cfg.get('load_from'):
        refs.append(('load_from', ctx.cfg.load_from))
    findings = [_check_ref(key, ref) for key, ref in refs]
    return [f for f in findings if f is not None]
