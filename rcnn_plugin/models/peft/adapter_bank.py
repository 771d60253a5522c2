"""One base model, many adapters: switch fine-tunes without reloading.

Each fine-tune of a PEFT config is stored as a small adapter checkpoint
(:func:`~rcnn_plugin.models.peft.save_adapter`, written in training by
``AdapterCheckpointHook``) that records the SHA-256 of the base weights it
was trained against. An :class:`AdapterBank` holds several such adapters
for one loaded model and switches between them in place: it copies the
adapter's tensors into the model and puts back the base values of the
tensors the previous adapter had set. Nothing is rebuilt or reloaded.

Adapters are checked when added: the same architecture (every state-dict
key and shape) and the same base (hash of the tensors the adapter does not
set); an adapter trained against another base is refused, naming both
hashes.
"""
import os.path as osp
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from rcnn_plugin.utils.checkpoint_io import read_checkpoint_file

from .adapter import (
    ADAPTER_FORMAT,
    _first_mismatch,
    architecture,
    base_fingerprint,
    base_mismatch_error,
    check_settings,
)


class AdapterBank:
    """Adapters for one model with base weights loaded, switched in place.

    Args:
        model (nn.Module): The PEFT model (built from the adapters' config)
            holding the base weights; changed in place by :meth:`switch`.

    Example::

        bank = AdapterBank(model)               # model holds the base
        bank.add('work_dirs/bccd/adapter_epoch_8.pth', name='bccd')
        bank.add('work_dirs/kitti/adapter_epoch_8.pth', name='kitti')
        bank.switch('kitti')                     # seconds it took
        bank.switch(None)                        # the base model again
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.adapters: OrderedDict[str, Dict[str, Any]] = OrderedDict()
        self.active: Optional[str] = None
        self._base: Dict[str, torch.Tensor] = {}  # base values of set keys
        self._hashes: Dict[frozenset, str] = {}

    @property
    def names(self) -> List[str]:
        """Names of the adapters held, in the order they were added."""
        return list(self.adapters)

    def base_sha256(self, exclude: Any = ()) -> str:
        """SHA-256 of the base tensors whose keys are not in ``exclude``.

        Computed with the base values in place (the active adapter is
        switched off for it) and cached per set of keys.

        Args:
            exclude (Collection[str]): Keys to skip (an adapter's).
                Defaults to ().

        Returns:
            str: The hex digest (see :func:`base_fingerprint`).
        """
        keys = frozenset(exclude)
        if keys not in self._hashes:
            active = self.active
            self.switch(None)
            self._hashes[keys] = base_fingerprint(self.model, keys)
            self.switch(active)
        return self._hashes[keys]

    def add(self,
            adapter: Union[str, Dict[str, Any]],
            name: Optional[str] = None) -> str:
        """Check an adapter against the model and keep it (not applied).

        Args:
            adapter (str | dict): An adapter checkpoint path, or its content.
            name (str, optional): Its name in the bank; a path's file name
                without extension by default. Defaults to None.

        Returns:
            str: The name it is held under.

        Raises:
            ValueError: If it is not an adapter checkpoint, was trained on
                another architecture (names the first mismatched key) or
                against another base (names both hashes), or if the name
                is taken.
        """
        label = adapter if isinstance(adapter, str) else 'the adapter'
        if name is None:
            name = (osp.splitext(osp.basename(adapter))[0]
                    if isinstance(adapter, str) else f'adapter_{len(self)}')
        if name in self.adapters:
            raise ValueError(f'an adapter named {name!r} is held already; '
                             f'held: {self.names}')
        ckpt = (read_checkpoint_file(adapter)
                if isinstance(adapter, str) else adapter)
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        if meta.get('format') != ADAPTER_FORMAT:
            raise ValueError(f'{label} is not an adapter checkpoint '
                             f'(meta.format is {meta.get("format")!r})')
        mismatch = _first_mismatch(architecture(self.model), meta['arch'])
        if mismatch:
            raise ValueError(f'{label} was trained on another architecture: '
                             f'first mismatched key {mismatch}')
        check_settings(label, meta, self.model)
        have = self.base_sha256(ckpt['state_dict'])
        if have != meta['base_sha256']:
            raise base_mismatch_error(label, meta, have, hint='')
        live = self.model.state_dict()
        state = OrderedDict(
            (k, v.to(device=live[k].device, dtype=live[k].dtype))
            for k, v in ckpt['state_dict'].items())
        for key in state:
            if key not in self._base:  # untouched keys hold base values
                self._base[key] = live[key].detach().clone()
        self.adapters[name] = dict(meta=meta, state_dict=state)
        return name

    @torch.no_grad()
    def switch(self, name: Optional[str]) -> float:
        """Make ``name`` the active adapter (None: the base model).

        Args:
            name (str, optional): A held adapter's name, or None.

        Returns:
            float: Seconds the switch took (tensor copies only).

        Raises:
            KeyError: If no adapter of that name is held.
        """
        if name is not None and name not in self.adapters:
            raise KeyError(f'no adapter named {name!r}; held: {self.names}')
        start = time.perf_counter()
        if name != self.active:
            live = self.model.state_dict()
            if self.active is not None:
                for key in self.adapters[self.active]['state_dict']:
                    live[key].copy_(self._base[key])
            if name is not None:
                for key, value in self.adapters[name]['state_dict'].items():
                    live[key].copy_(value)
            self.active = name
        return time.perf_counter() - start

    def __len__(self) -> int:
        return len(self.adapters)
