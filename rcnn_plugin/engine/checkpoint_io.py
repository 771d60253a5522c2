"""Read a checkpoint file for the model converters, with clear errors."""
import os.path as osp
import pickle
import zipfile
from typing import Dict, Tuple

import torch

from .checkpoint import UnsafeCheckpointError, load_checkpoint_safely


class CorruptCheckpointError(ValueError):
    """A checkpoint file cannot be read (truncated, corrupt, not torch)."""


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
    try:
        ckpt = load_checkpoint_safely(filename, map_location='cpu')
    except (FileNotFoundError, UnsafeCheckpointError):
        raise
    except (RuntimeError, EOFError, KeyError, ValueError, OSError,
            zipfile.BadZipFile, pickle.UnpicklingError) as err:
        raise CorruptCheckpointError(
            f'{osp.abspath(filename)} is not a readable torch checkpoint '
            f'(truncated or corrupt?): {type(err).__name__}: '
            f'{str(err)[:200]}') from err
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
