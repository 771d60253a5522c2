"""Adapter-only checkpoints: the trained tensors of a PEFT model.

An adapter checkpoint is ``{'meta': ..., 'state_dict': ...}`` where
``state_dict`` holds the parameters that require gradients and the buffers
(BN running statistics) of modules that own such parameters, and ``meta``
holds plain data only (loadable with ``weights_only=True``):

- ``arch``: every state-dict key of the model with its shape, in order;
- ``base_sha256``: a hash of the frozen tensors the adapter was trained on
  (:func:`base_fingerprint`), checked on loading; ``base_name``: the base
  checkpoint's file name, when the training recorded it;
- ``peft_cfg``: the model's ``PEFTDetector`` settings, when it has them.

Loading it on top of the same base weights reproduces the fine-tuned model.
"""
import hashlib
import os
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Union

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from rcnn_plugin.utils.checkpoint_io import read_checkpoint_file

from .freeze import has_frozen_stats
from .settings import first_setting_difference

ADAPTER_FORMAT = 'rcnn_plugin.adapter/1'


def _stats_updating_norms(model: nn.Module) -> set:
    """Names of the BN layers whose running statistics training changes:
    in train mode after the model's own ``train()`` (which applies mmdet's
    ``norm_eval``) and not stats-frozen. Each module's mode is put back."""
    modes = {m: m.training for m in model.modules()}
    try:
        model.train()
        return {name for name, m in model.named_modules()
                if isinstance(m, _BatchNorm) and m.track_running_stats
                and not has_frozen_stats(m) and m.training}
    finally:
        for module, mode in modes.items():
            module.training = mode


def adapter_state_dict(
        model: nn.Module,
        state: Optional[Mapping[str, torch.Tensor]] = None
) -> 'OrderedDict[str, torch.Tensor]':
    """The tensors that training changes: trainable parameters, and the
    buffers of their modules and of BN layers that update their running
    statistics (``norm_eval=False``).

    Args:
        model (nn.Module): The model (unwrapped from DDP).
        state (Mapping[str, Tensor], optional): Where to read the values
            (a checkpoint's ``state_dict``, which an ``EMAHook`` fills
            with the averaged weights); None: the model's. Defaults to
            None.

    Returns:
        OrderedDict[str, Tensor]: Detached CPU copies, in state-dict order.
    """
    keep = set()
    updating = _stats_updating_norms(model)
    for mname, module in model.named_modules():
        prefix = f'{mname}.' if mname else ''
        own = list(module.named_parameters(recurse=False))
        for pname, param in own:
            if param.requires_grad:
                keep.add(prefix + pname)
        if any(p.requires_grad for _, p in own) or mname in updating:
            keep.update(prefix + b for b, _ in
                        module.named_buffers(recurse=False))
    state = model.state_dict() if state is None else state
    return OrderedDict((k, v.detach().cpu().clone())
                       for k, v in state.items() if k in keep)


def architecture(model: nn.Module) -> List[List[Any]]:
    """Every state-dict key with its shape: ``[[key, [d0, d1, ...]], ...]``.

    Args:
        model (nn.Module): The model.

    Returns:
        list[list]: Plain data, in state-dict order.
    """
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def base_fingerprint(model: nn.Module, exclude: Any,
                     state: Optional[Mapping[str, torch.Tensor]] = None
                     ) -> str:
    """SHA-256 over the model's tensors whose keys are not in ``exclude``.

    Args:
        model (nn.Module): The model.
        exclude (Container[str]): Keys to skip (the adapter's).
        state (Mapping[str, Tensor], optional): Values to hash instead of
            the model's (see :func:`adapter_state_dict`). Defaults to None.

    Returns:
        str: The hex digest.
    """
    digest = hashlib.sha256()
    state = model.state_dict() if state is None else state
    for key, value in state.items():
        if key in exclude:
            continue
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_adapter(model: nn.Module,
                 filename: str,
                 extra_meta: Optional[Dict[str, Any]] = None,
                 state_dict: Optional[Mapping[str, torch.Tensor]] = None
                 ) -> int:
    """Write an adapter-only checkpoint.

    Args:
        model (nn.Module): The fine-tuned model (unwrapped from DDP).
        filename (str): Output path; its folder is created.
        extra_meta (dict, optional): More plain meta data (epoch, iter).
            Defaults to None.
        state_dict (Mapping[str, Tensor], optional): The values to save
            (the regular checkpoint's, e.g. EMA weights); None: the
            model's. Defaults to None.

    Returns:
        int: The number of tensor elements saved.
    """
    state = adapter_state_dict(model, state_dict)
    # The base hash from the live model: frozen tensors never change in
    # training, while an EMAHook's averages of them (in ``state_dict``) may
    # differ by rounding (mmdet's ExpMomentumEMA: mul_ then add_).
    meta = dict(format=ADAPTER_FORMAT, arch=architecture(model),
                base_sha256=base_fingerprint(model, state),
                peft_cfg=getattr(model, 'peft_cfg', None))
    meta.update(extra_meta or {})
    os.makedirs(osp.dirname(osp.abspath(filename)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=state), filename)
    return sum(v.numel() for v in state.values())


def _first_mismatch(model_arch: List[List[Any]],
                    saved_arch: List[List[Any]]) -> Optional[str]:
    saved = dict((k, s) for k, s in saved_arch)
    current = dict((k, s) for k, s in model_arch)
    for key, shape in saved_arch:
        if key not in current:
            return f'{key!r} (in the adapter, not in the model)'
        if current[key] != shape:
            return (f'{key!r} (shape {shape} in the adapter, {current[key]} '
                    'in the model)')
    for key, _ in model_arch:
        if key not in saved:
            return f'{key!r} (in the model, not in the adapter)'
    return None


def load_adapter(model: nn.Module,
                 adapter: Union[str, Dict[str, Any]],
                 check_base: bool = True) -> Dict[str, Any]:
    """Load an adapter checkpoint on top of a model's base weights.

    Build the model with the same ``PEFTDetector`` settings, load the base
    checkpoint into it first, then call this.

    Args:
        model (nn.Module): The model, changed in place.
        adapter (str | dict): Path of an adapter checkpoint, or its content.
        check_base (bool): Refuse base weights that differ from those the
            adapter was trained on. Defaults to True.

    Returns:
        dict: The adapter's meta data.

    Raises:
        ValueError: If the model's architecture differs from the adapter's
            (the message names the first mismatched key), if a PEFT
            setting that changes outputs differs (see
            :func:`check_settings`), or, with
            ``check_base``, if the base weights differ.
    """
    name = adapter if isinstance(adapter, str) else 'the adapter'
    ckpt = read_checkpoint_file(adapter) if isinstance(adapter,
                                                       str) else adapter
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    if meta.get('format') != ADAPTER_FORMAT:
        raise ValueError(f'{name} is not an adapter checkpoint (meta.format '
                         f'is {meta.get("format")!r}, not {ADAPTER_FORMAT!r})')
    mismatch = _first_mismatch(architecture(model), meta['arch'])
    if mismatch:
        raise ValueError(
            f'{name} was trained on another architecture: first mismatched '
            f'key {mismatch}. Build the model with the same config (and '
            f'PEFT settings: {meta.get("peft_cfg")}).')
    check_settings(name, meta, model)
    state = ckpt['state_dict']
    if check_base:
        have = base_fingerprint(model, state)
        if have != meta['base_sha256']:
            raise base_mismatch_error(name, meta, have)
    model.load_state_dict(state, strict=False)
    return meta


def check_settings(name: str, meta: Dict[str, Any], model: nn.Module) -> None:
    """Refuse an adapter trained under PEFT settings that change outputs.

    Args:
        name (str): The adapter's file name (or a description).
        meta (dict): The adapter's meta data.
        model (nn.Module): The model it is to be loaded on.

    Raises:
        ValueError: Naming the first setting that differs (e.g. LoRA's
            ``alpha``, see :mod:`rcnn_plugin.models.peft.settings`).
    """
    why = first_setting_difference(meta.get('peft_cfg'),
                                   getattr(model, 'peft_cfg', None))
    if why:
        raise ValueError(
            f'{name} was trained with other PEFT settings, which change the '
            f'outputs without changing a tensor\'s shape: {why}. Build the '
            'model with the config it was trained with.')


def base_mismatch_error(
        name: str,
        meta: Dict[str, Any],
        model_sha256: str,
        hint: str = ', or pass check_base=False') -> ValueError:
    """The error for an adapter trained against other base weights.

    Args:
        name (str): The adapter's file name (or a description).
        meta (dict): The adapter's meta data (``base_sha256``, and
            ``base_name`` when recorded).
        model_sha256 (str): :func:`base_fingerprint` of the model's base.
        hint (str): The end of the advice. Defaults to
            ', or pass check_base=False'.

    Returns:
        ValueError: The error, naming both hashes.
    """
    base = meta.get('base_name')
    return ValueError(
        f'{name} was trained on other base weights: its base'
        + (f' {base!r}' if base else '') +
        f' has sha256 {meta["base_sha256"]}, the loaded model\'s base has '
        f'sha256 {model_sha256} (frozen tensors differ). Load the base '
        f'checkpoint it was trained from{hint}.')
