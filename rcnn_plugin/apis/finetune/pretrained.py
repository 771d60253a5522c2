"""Start a fine-tune from a detector checkpoint with other classes."""
import os.path as osp
from typing import List, Sequence, Tuple

import torch

from rcnn_plugin.models.utils.class_surgery import (
    build_class_mapping,
    find_class_heads,
    remap_state_dict,
)
from rcnn_plugin.utils.checkpoint_io import read_checkpoint

__all__ = ['retarget_checkpoint', 'from_checkpoint_share']


def _describe(state_dict: dict) -> str:
    """A few words on what a state dict holds, for errors."""
    tops = sorted({key.split('.')[0] for key in state_dict})
    shown = ', '.join(tops[:6]) + (', ...' if len(tops) > 6 else '')
    return (f'{len(state_dict)} tensors under the top-level names '
            f'[{shown}]')


def _source_classes(state_dict: dict, meta: dict,
                    prefix: str) -> Tuple[int, List[str]]:
    """Number of source classes and their names (empty if unknown)."""
    names = (meta.get('dataset_meta') or {}).get('classes') or meta.get(
        'CLASSES') or ()
    if names:
        return len(names), list(names)
    rows = state_dict[prefix + 'fc_cls.weight'].shape[0]
    return rows - 1, []  # mmdet's softmax head: background last


def retarget_checkpoint(src: str, classes: Sequence[str], dst: str,
                        class_agnostic: Sequence[str] = ()) -> List[str]:
    """Re-target a detector checkpoint to ``classes`` by class surgery.

    Classes whose names the checkpoint's ``meta['dataset_meta']`` also
    lists keep their trained rows; the others start as mmdet initialises
    them. Backbone, neck and RPN weights are kept as they are.

    Args:
        src (str): An mmdet Faster / Mask R-CNN checkpoint.
        classes (Sequence[str]): The target class names, in label order.
        dst (str): Where to write the re-targeted checkpoint.
        class_agnostic (Sequence[str]): The target model's class-agnostic
            layers (``'roi_head.bbox_head.fc_reg'`` with
            ``reg_class_agnostic``, ``'roi_head.mask_head.conv_logits'``
            with a ``class_agnostic`` mask head), copied unchanged. With a
            single source class their shape is that of a class-specific
            layer, so only the caller can tell. Defaults to ().

    Returns:
        list[str]: One line per target class: where its rows come from.

    Raises:
        ValueError: If ``src`` holds no R-CNN detector (a backbone or a
            classifier, say), naming what it holds.
    """
    state_dict, meta = read_checkpoint(src)
    try:
        bbox_prefixes, _ = find_class_heads(state_dict)
    except ValueError:
        raise ValueError(
            f'--from {src} is not an R-CNN detector checkpoint: it holds '
            f'{_describe(state_dict)}, and no box head '
            '(roi_head.bbox_head.fc_cls). Give an mmdet Faster or Mask '
            'R-CNN checkpoint (tools/model_converters/torchvision2mmdet.py '
            'converts torchvision detectors); for ImageNet backbone '
            'weights, leave --from out.') from None
    num_src, src_names = _source_classes(state_dict, meta,
                                         bbox_prefixes[0])
    sources = build_class_mapping(
        src_names, list(classes), _folded_matches(src_names, classes),
        match_names=True) if src_names else [[] for _ in classes]
    new_sd = remap_state_dict(state_dict, num_src, sources,
                              class_agnostic=class_agnostic)
    dataset_meta = dict(classes=tuple(classes))
    torch.save({'meta': dict(dataset_meta=dataset_meta,
                             remapped_from=osp.basename(src)),
                'state_dict': new_sd}, dst)
    if not src_names:
        return [f'{name}: new rows (mmdet init; the checkpoint records no '
                'class names to match)' for name in classes]
    return [
        f'{name}: ' + (' + '.join(src_names[i] for i in srcs)
                       if srcs else 'new rows (mmdet init)')
        for name, srcs in zip(classes, sources)
    ]


def _fold(name: str) -> str:
    return ''.join(c for c in str(name).lower() if c not in ' _-')


def _folded_matches(src_names: Sequence[str],
                    classes: Sequence[str]) -> dict:
    """Target classes that match a source class only when case, spaces,
    ``_`` and ``-`` are ignored ('Person' and 'person', 'traffic light'
    and 'traffic_light'), when that match is unique."""
    folded: dict = {}
    for name in src_names:
        folded.setdefault(_fold(name), []).append(name)
    targets = [_fold(name) for name in classes]  # unique on both sides
    return {name: folded[_fold(name)] for name in classes
            if name not in src_names and len(folded.get(_fold(name), [])) == 1
            and targets.count(_fold(name)) == 1}


def from_checkpoint_share(config_path: str, checkpoint: str,
                          at_least: float = 0.5) -> float:
    """The share of the written model's weights (by elements) that the
    re-targeted ``--from`` checkpoint fills; a sentence when it fills less
    than ``at_least`` of the backbone (a checkpoint with this backbone and
    another neck or head still starts the backbone from it).

    mmengine loads ``load_from`` with ``strict=False``: an mmdet model-zoo
    ResNet-50 checkpoint does not fit the MobileNetV2 backbone, which is
    skipped with log warnings, so the fine-tune starts from ImageNet
    weights while saying ``--from``.

    Args:
        config_path (str): The written config.
        checkpoint (str): The re-targeted checkpoint.
        at_least (float): The share below which it is an error.
            Defaults to 0.5.

    Returns:
        float: The share of the model's elements loaded (the caller says
        how much).

    Raises:
        ValueError: Naming the shares and the first modules that differ.
    """
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from rcnn_plugin.utils.checkpoint_io import compare_state_dicts
    cfg = Config.fromfile(config_path)
    model_cfg = dict(cfg.model)
    if isinstance(model_cfg.get('backbone'), dict):  # no ImageNet load
        model_cfg['backbone'] = dict(model_cfg['backbone'], init_cfg=None)
    own = MODELS.build(model_cfg).state_dict()
    found = compare_state_dicts(read_checkpoint(checkpoint)[0], own)
    loaded = set(found['loaded'])

    def share(prefix: str) -> float:
        keys = [k for k in own if k.startswith(prefix)]
        total = sum(own[k].numel() for k in keys)
        return sum(own[k].numel() for k in keys if k in loaded) / max(
            total, 1)

    whole, backbone = share(''), share('backbone.')
    if backbone < at_least:
        shown = sorted({'.'.join(k.split('.')[:2]) for k in
                        found['missing'] + [m[0] for m in
                                            found['mismatched']]})[:4]
        raise ValueError(
            f'--from {checkpoint}: it fills {backbone:.0%} of the model\'s '
            f'backbone and {whole:.0%} of its weights (missing or of other '
            f'shapes: {", ".join(shown)}, ...); it was trained with another '
            'architecture than this model, so the fine-tune would start '
            'from ImageNet weights. Give a checkpoint of this model '
            '(configs/_base_/models/), or leave out --from')
    return whole
