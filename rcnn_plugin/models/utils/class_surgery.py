"""Class surgery: re-target the class-specific rows of an R-CNN head.

Shapes: ``C_s`` source classes, ``C_t`` target classes, ``D`` input width.

mmdet keeps the background row LAST in a softmax classifier:

- ``roi_head.bbox_head.fc_cls``: ``(C + 1, D)`` (softmax) or ``(C, D)``
  (sigmoid); the bias may be absent (cosine classifiers);
- ``roi_head.bbox_head.fc_reg``: ``(4 * C, D)``, or ``(4, D)`` when
  ``reg_class_agnostic=True``;
- ``roi_head.mask_head.conv_logits``: ``(C, D, 1, 1)``, or ``(1, D, 1, 1)``
  when ``class_agnostic=True``.

Cascade heads (``bbox_head.0``, ``bbox_head.1``, ...) are handled stage by
stage. With a single source class, class-specific and class-agnostic
layouts have the same shape; they are treated as class-specific (mmdet's
default) unless the caller names them in ``class_agnostic``. A mapping
is a list ``sources`` of length ``C_t``: ``sources[t]``
lists the source class indices whose rows initialise target class ``t``
(several are averaged; none means a fresh row initialised as mmdet's
``init_weights`` would). A caller may pass ``prototypes`` (for example
few-shot class means) to initialise chosen target rows instead.
"""
import math
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

# Initialisation of fresh rows, as mmdet's heads do it:
# BBoxHead.init_cfg: Normal(std=0.01) for fc_cls, Normal(std=0.001) for
# fc_reg, bias 0; FCNMaskHead.init_weights: kaiming_normal_(mode='fan_out',
# nonlinearity='relu') for conv_logits, bias 0.
CLS_STD = 0.01
REG_STD = 0.001

SUPPORTED_HEADS = (
    'Faster R-CNN / Cascade R-CNN box heads: '
    'roi_head.bbox_head[.i].fc_cls and fc_reg',
    'Mask R-CNN mask heads: roi_head.mask_head[.i].conv_logits',
)

_BBOX_RE = re.compile(r'^(.*roi_head\.bbox_head(?:\.\d+)?\.)fc_cls\.weight$')
_MASK_RE = re.compile(
    r'^(.*roi_head\.mask_head(?:\.\d+)?\.)conv_logits\.weight$')


def build_class_mapping(src_classes: Sequence[str],
                        dst_classes: Sequence[str],
                        mapping: Optional[Mapping[str, Sequence[str]]] = None,
                        match_names: bool = True) -> List[List[int]]:
    """Turn class names into the ``sources`` index lists.

    Args:
        src_classes (Sequence[str]): Class names of the checkpoint.
        dst_classes (Sequence[str]): Class names wanted.
        mapping (Mapping[str, Sequence[str]], optional): Target name ->
            source names. Entries here replace the match by name.
            Defaults to None.
        match_names (bool): Map a target class to the source class of the
            same name when ``mapping`` does not mention it. Defaults to True.

    Returns:
        list[list[int]]: ``sources[t]`` = source indices for target ``t``.

    Raises:
        ValueError: If a name in ``mapping`` is not a source (resp. target)
            class, or if a class list has duplicates.
    """
    for what, names in (('source', src_classes), ('target', dst_classes)):
        dup = sorted({n for n in names if list(names).count(n) > 1})
        if dup:
            raise ValueError(f'duplicate {what} class names: {dup}')
    mapping = dict(mapping or {})
    bad_dst = [t for t in mapping if t not in dst_classes]
    if bad_dst:
        raise ValueError(f'mapping names target classes {bad_dst} that are '
                         f'not in the target classes {list(dst_classes)}')
    bad_src = sorted({s for srcs in mapping.values() for s in srcs
                      if s not in src_classes})
    if bad_src:
        raise ValueError(f'mapping names source classes {bad_src} that are '
                         f'not in the source classes {list(src_classes)}')
    sources = []
    for name in dst_classes:
        if name in mapping:
            sources.append([list(src_classes).index(s) for s in mapping[name]])
        elif match_names and name in src_classes:
            sources.append([list(src_classes).index(name)])
        else:
            sources.append([])
    return sources


def remap_rows(param: Tensor,
               sources: Sequence[Sequence[int]],
               block: int = 1,
               std: float = 0.0,
               prototypes: Optional[Mapping[int, Tensor]] = None,
               generator: Optional[torch.Generator] = None) -> Tensor:
    """Build a target parameter from blocks of rows of a source parameter.

    The source holds ``len(param) // block`` blocks of ``block`` rows (4 for
    box regression). Target block ``t`` is the mean of the source blocks
    ``sources[t]``, ``prototypes[t]`` if given, else ``Normal(0, std)``
    (zeros when ``std`` is 0, as for biases).

    Args:
        param (Tensor): Source weight or bias, shape ``(B * block, ...)``.
        sources (Sequence[Sequence[int]]): Source block indices per target
            block.
        block (int): Rows per class. Defaults to 1.
        std (float): Std of fresh rows. Defaults to 0.0.
        prototypes (Mapping[int, Tensor], optional): Target block index ->
            rows of shape ``(block, ...)`` (or ``param.shape[1:]`` when
            ``block`` is 1). Defaults to None.
        generator (torch.Generator, optional): For fresh rows. Defaults to
            None.

    Returns:
        Tensor: Shape ``(len(sources) * block, ...)``, same dtype as
        ``param``.

    Raises:
        ValueError: If an index is out of range or a prototype has the
            wrong shape.
    """
    if param.shape[0] % block:
        raise ValueError(f'{param.shape[0]} rows are not a multiple of '
                         f'block={block}')
    blocks = param.reshape(param.shape[0] // block, block, *param.shape[1:])
    prototypes = dict(prototypes or {})
    out = []
    for t, srcs in enumerate(sources):
        if t in prototypes:
            proto = prototypes[t].to(param).reshape(blocks.shape[1:])
            out.append(proto)
        elif srcs:
            bad = [s for s in srcs if not 0 <= s < blocks.shape[0]]
            if bad:
                raise ValueError(f'source rows {bad} out of range for '
                                 f'{blocks.shape[0]} classes')
            out.append(blocks[list(srcs)].float().mean(0).to(param.dtype))
        else:
            fresh = torch.randn(blocks.shape[1:], generator=generator,
                                dtype=torch.float32) * std
            out.append(fresh.to(param))
    if not out:
        return param.new_zeros((0, *param.shape[1:]))
    return torch.stack(out).reshape(-1, *param.shape[1:])


def find_class_heads(state_dict: Mapping[str, Tensor]
                     ) -> Tuple[List[str], List[str]]:
    """Find the box and mask head prefixes in an mmdet state dict.

    Args:
        state_dict (Mapping[str, Tensor]): mmdet model state dict.

    Returns:
        tuple[list[str], list[str]]: Box head prefixes (ending with ``.``)
        and mask head prefixes.

    Raises:
        ValueError: If there is no box head, listing the supported ones.
    """
    bbox = sorted(m.group(1) for k in state_dict
                  if (m := _BBOX_RE.match(k)))
    mask = sorted(m.group(1) for k in state_dict
                  if (m := _MASK_RE.match(k)))
    if not bbox:
        raise ValueError(
            'no class-specific R-CNN head found in the checkpoint (no key '
            'like roi_head.bbox_head.fc_cls.weight). Supported: '
            + '; '.join(SUPPORTED_HEADS))
    return bbox, mask


def _cls_layout(rows: int, num_src: int, key: str) -> bool:
    """Return True when ``fc_cls`` has a background row (softmax)."""
    if rows == num_src + 1:
        return True
    if rows == num_src:
        return False
    raise ValueError(f'{key} has {rows} rows; with {num_src} source classes '
                     f'expected {num_src + 1} (softmax, background last) or '
                     f'{num_src} (sigmoid)')


def _bbox_plan(state_dict: Mapping[str, Tensor], prefix: str, num_src: int,
               sources: List[List[int]],
               agnostic: Sequence[str] = ()) -> Dict[str, tuple]:
    """Per parameter of one box head: (sources, rows per class, std)."""
    rows = state_dict[prefix + 'fc_cls.weight'].shape[0]
    with_bg = _cls_layout(rows, num_src, prefix + 'fc_cls.weight')
    plan = {'fc_cls': (sources + [[num_src]] if with_bg else sources, 1,
                       CLS_STD)}
    if (prefix + 'fc_reg.weight' in state_dict
            and prefix + 'fc_reg' not in agnostic):
        reg_rows = state_dict[prefix + 'fc_reg.weight'].shape[0]
        if reg_rows == 4 * num_src:  # one source class: assume specific
            plan['fc_reg'] = (sources, 4, REG_STD)
        elif reg_rows != 4:
            raise ValueError(
                f'{prefix}fc_reg.weight has {reg_rows} rows; expected '
                f'{4 * num_src} or 4 (reg_class_agnostic)')
    return plan


def _mask_plan(state_dict: Mapping[str, Tensor], prefix: str, num_src: int,
               sources: List[List[int]],
               agnostic: Sequence[str] = ()) -> Dict[str, tuple]:
    """Plan of one mask head; ``None`` std means mmdet's Kaiming init."""
    if prefix + 'conv_logits' in agnostic:
        return {}
    rows = state_dict[prefix + 'conv_logits.weight'].shape[0]
    if rows == num_src:  # one source class: assume class-specific
        return {'conv_logits': (sources, 1, None)}
    if rows != 1:
        raise ValueError(f'{prefix}conv_logits.weight has {rows} rows; '
                         f'expected {num_src} or 1 (class_agnostic)')
    return {}


def remap_state_dict(
        state_dict: Mapping[str, Tensor],
        num_src_classes: int,
        sources: List[List[int]],
        prototypes: Optional[Mapping[str, Mapping[int, Tensor]]] = None,
        seed: int = 0,
        class_agnostic: Sequence[str] = ()) -> 'Dict[str, Tensor]':
    """Re-target every class-specific head parameter of a state dict.

    The background row of a softmax ``fc_cls`` stays last and is copied.
    Class-agnostic regression and masks are copied unchanged. Fresh rows
    follow mmdet's init (``fc_cls`` Normal(0, 0.01), ``fc_reg``
    Normal(0, 0.001), ``conv_logits`` Kaiming normal with fan-out over the
    target classes, biases 0). Other keys are copied as they are.

    Args:
        state_dict (Mapping[str, Tensor]): mmdet model state dict.
        num_src_classes (int): ``C_s``, classes of ``state_dict``.
        sources (list[list[int]]): Source class indices per target class,
            as :func:`build_class_mapping` returns.
        prototypes (Mapping[str, Mapping[int, Tensor]], optional): Full
            parameter key (e.g. ``'roi_head.bbox_head.fc_cls.weight'``) ->
            target class index -> rows to use for that class. Defaults to
            None.
        seed (int): Seed of the fresh rows. Defaults to 0.
        class_agnostic (Sequence[str]): Layers known to be class-agnostic
            (e.g. ``'roi_head.bbox_head.fc_reg'`` of a
            ``reg_class_agnostic`` head, ``'roi_head.mask_head.conv_logits'``
            of a ``class_agnostic`` mask head), copied unchanged. Needed
            with a single source class, whose layouts have the same shape.
            Defaults to ().

    Returns:
        dict[str, Tensor]: The target state dict.

    Raises:
        ValueError: If no supported head is found or a head's row count
            does not fit ``num_src_classes``.
    """
    bbox, mask = find_class_heads(state_dict)
    gen = torch.Generator().manual_seed(seed)
    prototypes = prototypes or {}
    out = dict(state_dict)
    for prefix in bbox:
        plan = _bbox_plan(state_dict, prefix, num_src_classes, sources,
                          class_agnostic)
        _apply_plan(out, prefix, plan, prototypes, gen)
    for prefix in mask:
        plan = _mask_plan(state_dict, prefix, num_src_classes, sources,
                          class_agnostic)
        _apply_plan(out, prefix, plan, prototypes, gen)
    return out


def _apply_plan(out: Dict[str, Tensor], prefix: str, plan: Dict[str, tuple],
                prototypes: Mapping[str, Mapping[int, Tensor]],
                gen: torch.Generator) -> None:
    for name, (srcs, block, std) in plan.items():
        wkey, bkey = f'{prefix}{name}.weight', f'{prefix}{name}.bias'
        weight = out[wkey]
        if std is None:  # Kaiming normal, fan_out over the target rows.
            fan_out = len(srcs) * block * math.prod(weight.shape[2:])
            std = math.sqrt(2.0 / max(fan_out, 1))
        out[wkey] = remap_rows(weight, srcs, block, std,
                               prototypes.get(wkey), gen)
        if bkey in out:  # cosine classifiers have no bias
            out[bkey] = remap_rows(out[bkey], srcs, block, 0.0,
                                   prototypes.get(bkey), gen)
