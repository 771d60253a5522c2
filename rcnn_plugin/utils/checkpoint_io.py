"""Read a checkpoint file for the model converters and tools, with clear
errors; compare it with a model."""
import os.path as osp
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from .checkpoint import (
    UnsafeCheckpointError,
    _unsafe_types,
    load_checkpoint_safely,
)


class CorruptCheckpointError(ValueError):
    """A checkpoint file cannot be read (truncated, corrupt, not torch)."""


def read_checkpoint_file(filename: str) -> Any:
    """:func:`load_checkpoint_safely` on the CPU, with an unreadable file
    (truncated, corrupt, not torch) as one sentence naming it.

    Args:
        filename (str): Local path.

    Returns:
        Any: The unpickled checkpoint, usually a dict.

    Raises:
        FileNotFoundError: If the file does not exist.
        CorruptCheckpointError: If it is not a readable torch checkpoint.
        UnsafeCheckpointError: If it pickles objects outside the allowlist.
    """
    try:
        return load_checkpoint_safely(filename, map_location='cpu')
    except FileNotFoundError:
        raise
    except UnsafeCheckpointError as err:
        if _unsafe_types(filename):  # a real pickle with foreign objects
            raise
        raise CorruptCheckpointError(  # not even a readable pickle
            f'{osp.abspath(filename)} is not a readable torch checkpoint '
            '(truncated or corrupt?): the unpickler failed before finding '
            'any object') from err
    except (RuntimeError, EOFError, KeyError, ValueError, OSError,
            zipfile.BadZipFile, pickle.UnpicklingError) as err:
        raise CorruptCheckpointError(
            f'{osp.abspath(filename)} is not a readable torch checkpoint '
            f'(truncated or corrupt?): {type(err).__name__}: '
            f'{str(err)[:200]}') from err


def read_checkpoint(filename: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Load a checkpoint safely and split it into state dict and meta.

    Accepts mmengine checkpoints (``{'meta', 'state_dict', ...}``), bare
    state dicts (torchvision files) and torchvision reference-script
    checkpoints (``{'model', 'optimizer', ...}``). ``module.`` prefixes of
    DDP models are not touched.

    Args:
        filename (str): Local path.

    Returns:
        tuple[dict, dict]: The state dict (name -> tensor) and the meta
        (empty for bare state dicts).

    Raises:
        FileNotFoundError: If the file does not exist.
        CorruptCheckpointError: If the file is not a readable torch
            checkpoint or holds no state dict.
        UnsafeCheckpointError: If it pickles objects outside the allowlist.
    """
    ckpt = read_checkpoint_file(filename)
    if not isinstance(ckpt, dict):
        raise CorruptCheckpointError(
            f'{filename} holds a {type(ckpt).__name__}, not a dict')
    # mmengine: 'state_dict'; torchvision's reference scripts: 'model'.
    state_dict = ckpt.get('state_dict', ckpt.get('model', ckpt))
    if not isinstance(state_dict, dict) or not state_dict or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CorruptCheckpointError(
            f'{filename} has no state dict of tensors (top-level keys: '
            f'{sorted(ckpt)[:10]})')
    meta = ckpt.get('meta') if 'state_dict' in ckpt else None
    return state_dict, dict(meta or {})


def compare_state_dicts(checkpoint: Dict[str, torch.Tensor],
                        model: Dict[str, torch.Tensor]) -> Dict[str, list]:
    """Which checkpoint keys would load into a model, as ``load_from`` does.

    A ``module.`` prefix (DDP) is stripped first, as mmengine does.

    Args:
        checkpoint (dict[str, Tensor]): Checkpoint state dict.
        model (dict[str, Tensor]): ``model.state_dict()``.

    Returns:
        dict[str, list]: ``loaded`` and ``missing`` (model keys without a
        usable tensor), ``unexpected`` (checkpoint keys the model lacks)
        and ``mismatched`` (``(key, checkpoint shape, model shape)``).
    """
    ckpt = {re.sub(r'^module\.', '', k): v for k, v in checkpoint.items()}
    mismatched = [(k, tuple(v.shape), tuple(model[k].shape))
                  for k, v in ckpt.items()
                  if k in model and v.shape != model[k].shape]
    bad = {k for k, _, _ in mismatched}
    return dict(
        loaded=[k for k in model if k in ckpt and k not in bad],
        missing=[k for k in model if k not in ckpt],
        unexpected=[k for k in ckpt if k not in model],
        mismatched=mismatched)


def group_by_module(state_dict: Dict[str, torch.Tensor],
                    depth: int = 2) -> 'OrderedDict[str, Tuple[int, int]]':
    """Count tensors and elements per module prefix.

    Args:
        state_dict (dict[str, Tensor]): A state dict.
        depth (int): Number of name parts in a prefix, e.g. 2 gives
            ``backbone.layer1``. Defaults to 2.

    Returns:
        OrderedDict[str, tuple[int, int]]: prefix -> (tensors, elements),
        in first-seen order.
    """
    if depth < 1:
        raise ValueError(f'depth must be >= 1, got {depth}')
    groups: OrderedDict[str, Tuple[int, int]] = OrderedDict()
    for key, value in state_dict.items():
        prefix = '.'.join(key.split('.')[:depth])
        count, numel = groups.get(prefix, (0, 0))
        groups[prefix] = (count + 1, numel + value.numel())
    return groups


def check_checkpoint_fits(model: torch.nn.Module, filename: str,
                          classes: Optional[Sequence[str]] = None) -> dict:
    """Refuse a checkpoint whose tensors do not fit the model's shapes.

    mmengine loads with ``strict=False``: a checkpoint of another class
    count logs one size-mismatch warning, leaves the classifier random and
    the evaluation reports a near-zero mAP. Evaluating or predicting with
    it is a mistake, so the tools stop here and name both class lists.

    Args:
        model (nn.Module): The model built from the config (a DDP wrapper's
            ``module.`` prefix is handled).
        filename (str): A local checkpoint file.
        classes (Sequence[str], optional): The config's classes, named in
            the error.

    Returns:
        dict: The checkpoint's meta (empty for a bare state dict).

    Raises:
        ValueError: Naming the first mismatched tensors, both shapes and
            the checkpoint's and the config's classes; or for an adapter
            checkpoint (PEFT's trained tensors only).
    """
    state_dict, meta = read_checkpoint(filename)
    if str(meta.get('format', '')).startswith('rcnn_plugin.adapter/'):
        # only the trained tensors: every base weight would stay random
        raise ValueError(
            f'{filename} is an adapter checkpoint (the trained tensors only)'
            ': give the base checkpoint as the checkpoint and this file as '
            'the adapter (--adapter)')
    own = {re.sub(r'^module\.', '', k): v
           for k, v in model.state_dict().items()}
    mismatched = compare_state_dicts(state_dict, own)['mismatched']
    if not mismatched:
        return meta
    shown = '; '.join(f'{k} {list(a)} in the checkpoint, {list(b)} in the '
                      'model' for k, a, b in mismatched[:3])
    theirs = (meta.get('dataset_meta') or {}).get('classes')
    raise ValueError(
        f'{filename} does not fit this config: {len(mismatched)} tensors '
        f'differ in shape ({shown}). Checkpoint classes: '
        f"{list(theirs) if theirs else 'not recorded'}; config classes: "
        f"{list(classes) if classes else 'see the dataset'}. Use the config "
        'it was trained with, or remap it with '
        'tools/model_converters/remap_classes.py')
