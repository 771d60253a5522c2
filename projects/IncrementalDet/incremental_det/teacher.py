"""The frozen previous model (teacher) of an incremental step.

The teacher has the student's architecture with the old classes only. It
is kept outside the student's module tree: its weights are never in the
student's ``state_dict`` (checkpoints), parameters (optimizer) or
``init_weights``.
"""
import copy
from typing import Optional, Sequence

from mmdet.models.detectors import TwoStageDetector
from mmengine.config import ConfigDict
from torch import nn

from rcnn_plugin.utils import load_checkpoint_safely


def check_class_split(old_classes: Sequence[str],
                      new_classes: Sequence[str]) -> None:
    """Validate the old / new class names of a step.

    Args:
        old_classes (Sequence[str]): Classes the teacher knows.
        new_classes (Sequence[str]): Classes this step adds.

    Raises:
        ValueError: If a list is empty or has duplicates, or a new class
            name collides with an old one.
    """
    for what, names in (('old_classes', old_classes),
                        ('new_classes', new_classes)):
        if not names:
            raise ValueError(f'{what} is empty')
        dup = sorted({n for n in names if list(names).count(n) > 1})
        if dup:
            raise ValueError(f'{what} has duplicates: {dup}')
    clash = [n for n in new_classes if n in old_classes]
    if clash:
        raise ValueError(f'new_classes {list(new_classes)} collide with '
                         f'old_classes {list(old_classes)}: {clash}. A step '
                         'adds classes; rename them or drop them from '
                         'new_classes.')


def build_teacher(backbone: dict, neck: Optional[dict], rpn_head: dict,
                  roi_head: dict, test_cfg: dict,
                  num_old_classes: int) -> TwoStageDetector:
    """The student's architecture with ``num_old_classes`` classes.

    Args:
        backbone (dict): Student backbone config.
        neck (dict, optional): Student neck config.
        rpn_head (dict): Student RPN head config.
        roi_head (dict): Student RoI head config.
        test_cfg (dict): Student test config (proposals, NMS).
        num_old_classes (int): Classes of the teacher.

    Returns:
        TwoStageDetector: In eval mode, ``requires_grad`` off.
    """
    roi_head = copy.deepcopy(ConfigDict(roi_head))
    roi_head.bbox_head['num_classes'] = num_old_classes
    if roi_head.get('mask_head') is not None:  # Mask R-CNN
        roi_head.mask_head['num_classes'] = num_old_classes
    # Not trained: a plain loss, whatever the student's (e.g. MMA's).
    roi_head.bbox_head['loss_cls'] = dict(
        type='CrossEntropyLoss', use_sigmoid=False)
    teacher = TwoStageDetector(
        backbone=copy.deepcopy(backbone), neck=copy.deepcopy(neck),
        rpn_head=copy.deepcopy(rpn_head), roi_head=roi_head,
        train_cfg=None, test_cfg=copy.deepcopy(test_cfg))
    return freeze(teacher)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients.

    Args:
        model (nn.Module): The model.

    Returns:
        nn.Module: ``model``.
    """
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def load_teacher(teacher: nn.Module, filename: str,
                 old_classes: Sequence[str]) -> None:
    """Load the previous step's checkpoint into ``teacher``.

    Args:
        teacher (nn.Module): From :func:`build_teacher`.
        filename (str): mmengine checkpoint of the previous model.
        old_classes (Sequence[str]): The classes it must have, in order.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If its classes (``meta.dataset_meta.classes``, else
            the classifier's rows) do not match ``old_classes``.
    """
    ckpt = load_checkpoint_safely(filename, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    meta = (ckpt.get('meta') or {}).get('dataset_meta') or {}
    saved = meta.get('classes')
    if saved is not None and list(saved) != list(old_classes):
        raise ValueError(f'teacher_ckpt {filename} was trained on classes '
                         f'{list(saved)}, but old_classes is '
                         f'{list(old_classes)}: set old_classes to the '
                         'checkpoint\'s classes, in its order.')
    rows = state.get('roi_head.bbox_head.fc_cls.weight')
    if rows is not None and rows.shape[0] != len(old_classes) + 1:
        raise ValueError(
            f'teacher_ckpt {filename} has a classifier for '
            f'{rows.shape[0] - 1} classes, but old_classes is '
            f'{list(old_classes)} ({len(old_classes)} classes)')
    try:
        teacher.load_state_dict(state, strict=True)
    except RuntimeError as err:  # another backbone, neck width or mask head
        first = str(err).strip().splitlines()
        raise ValueError(
            f'model.teacher_ckpt {filename} does not fit the student\'s '
            f'architecture: {" ".join(x.strip() for x in first[:3])}') \
            from err
    freeze(teacher)
