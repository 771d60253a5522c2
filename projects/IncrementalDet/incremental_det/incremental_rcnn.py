"""An incremental Faster R-CNN step: old classes kept, new classes added.

Shapes: ``N`` images, ``R`` RoIs, ``C_o`` old and ``C_n`` new classes,
``C = C_o + C_n`` (old first). The student starts from the teacher's
weights, with the heads grown by :mod:`rcnn_plugin.models.utils`'s class
surgery (old rows and the background row copied, new rows fresh).
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

from rcnn_plugin.models.utils import build_class_mapping, remap_state_dict
from rcnn_plugin.utils.config_types import cfg_type_name

from .arg_checks import check_dicts, check_values
from .losses import (
    FEAT_MODES,
    RPN_MODES,
    attentive_roi_distill,
    box_delta_distill,
    feature_distill,
    ilod_logit_distill,
    rpn_distill,
    unbiased_logit_distill,
)
from .pseudo_labels import add_pseudo_labels, filter_pseudo_labels
from .teacher import build_teacher, check_class_split, load_teacher

DISTILL_DEFAULTS = dict(
    cls=0.0, reg=0.0, rpn=0.0, feat=0.0, ard=0.0, cls_mode='l2',
    rpn_mode='levels', feat_mode='filtered', ard_gamma=1.0,
    num_candidates=128, num_rois=64)


@MODELS.register_module()
class IncrementalFasterRCNN(TwoStageDetector):
    """Faster R-CNN trained on new classes with a frozen previous model.

    Losses added to Faster R-CNN's (each off at weight 0):

    - ``loss_distill_cls``: the teacher's logits on RoIs sampled from its
      proposals (ILOD: ``num_rois`` drawn from the ``num_candidates``
      with the lowest background score); ``cls_mode='l2'`` is ILOD's L2
      on mean-centred logits, ``'unbiased'`` MMA's KL with the new
      classes merged into background;
    - ``loss_distill_reg``: L2 on the old classes' box deltas there;
    - ``loss_distill_rpn``: Faster ILOD's filtered RPN distillation
      (``rpn_mode``, see :func:`rpn_distill`);
    - ``loss_distill_feat``: L1 on mean-centred FPN features
      (``feat_mode``, see :func:`feature_distill`);
    - ``loss_distill_ard``: ABR's attentive RoI distillation of the RoI
      features on the same RoIs as ``loss_distill_cls`` (``ard_gamma``,
      see :func:`attentive_roi_distill`).

    MMA's unbiased classification is the box head's ``loss_cls``
    (``UnbiasedCrossEntropyLoss``). ``pseudo_label`` adds the teacher's
    confident old-class detections to the ground truth, except where they
    overlap a ground-truth box. The two are refused together: the
    unbiased loss assumes unlabelled old objects, and with pseudo-labels a
    background RoI is background, so it would never be taught not to be an
    old class.

    Args:
        backbone (ConfigType): Backbone config.
        rpn_head (ConfigType): RPN head config.
        roi_head (ConfigType): RoI head config; ``bbox_head.num_classes``
            must be ``len(old_classes) + len(new_classes)``.
        train_cfg (ConfigType): Training config.
        test_cfg (ConfigType): Test config (also the teacher's).
        old_classes (Sequence[str]): The teacher's classes, in its order.
        new_classes (Sequence[str]): Classes added; the student's classes
            are ``old_classes + new_classes``.
        teacher_ckpt (str, optional): Checkpoint of the previous model.
            Required unless ``allow_random_teacher``. Defaults to None.
        allow_random_teacher (bool): Allow ``teacher_ckpt=None`` (a
            randomly initialised teacher; for tests). Defaults to False.
        distill (dict, optional): Weights ``cls``, ``reg``, ``rpn``,
            ``feat``, ``ard``; ``cls_mode``, ``rpn_mode``, ``feat_mode``,
            ``ard_gamma``, ``num_candidates``, ``num_rois`` (see
            ``DISTILL_DEFAULTS``). Defaults to None (all off).
        pseudo_label (dict, optional): ``score_thr`` and ``iou_thr`` of
            :func:`filter_pseudo_labels`; None for no pseudo-labels.
            Defaults to None.
        neck (OptConfigType): Neck config. Defaults to None.
        data_preprocessor (OptConfigType): Data preprocessor config.
            Defaults to None.
        init_cfg (OptMultiConfig): Init config. Defaults to None.
    """

    distill_defaults = DISTILL_DEFAULTS
    # ``distill``'s weights; the RoI ones share the teacher's RoI sampling.
    loss_weights = ('cls', 'reg', 'rpn', 'feat', 'ard')
    roi_loss_weights = ('cls', 'reg', 'ard')

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 old_classes: Sequence[str],
                 new_classes: Sequence[str],
                 teacher_ckpt: Optional[str] = None,
                 allow_random_teacher: bool = False,
                 distill: Optional[dict] = None,
                 pseudo_label: Optional[dict] = None,
                 neck: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        check_class_split(old_classes, new_classes)
        self._check_args(roi_head, old_classes, new_classes, teacher_ckpt,
                         allow_random_teacher, distill, pseudo_label)
        super().__init__(
            backbone=backbone, neck=neck, rpn_head=rpn_head,
            roi_head=roi_head, train_cfg=train_cfg, test_cfg=test_cfg,
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.old_classes = tuple(old_classes)
        self.new_classes = tuple(new_classes)
        self.distill = {**self.distill_defaults, **(distill or {})}
        self.pseudo_label = dict(pseudo_label) if pseudo_label else None
        self.teacher_ckpt = teacher_ckpt
        # A list hides the teacher from the module tree: it is not saved,
        # optimised, re-initialised or switched to train mode.
        self._teacher = [build_teacher(
            backbone, neck, rpn_head, roi_head, test_cfg, len(old_classes))]
        if teacher_ckpt is not None:
            load_teacher(self.teacher, teacher_ckpt, old_classes)
        else:
            self.teacher.init_weights()
        self._capture: Optional[dict] = None
        self.rpn_head.register_forward_hook(self._capture_rpn)

    @classmethod
    def _check_roi_head(cls, roi_head: dict, old_classes: Sequence[str],
                        new_classes: Sequence[str]) -> None:
        """Class counts of the heads (a subclass adds its heads)."""
        if roi_head.get('mask_head') is not None:
            raise ValueError('roi_head has a mask_head: use '
                             "type='IncrementalMaskRCNN' for Mask R-CNN")
        num = roi_head['bbox_head']['num_classes']
        if num != len(old_classes) + len(new_classes):
            raise ValueError(
                f'roi_head.bbox_head.num_classes is {num}, but old_classes '
                f'{list(old_classes)} + new_classes {list(new_classes)} '
                f'are {len(old_classes) + len(new_classes)}')

    @classmethod
    def _check_args(cls, roi_head, old_classes, new_classes, teacher_ckpt,
                    allow_random_teacher, distill, pseudo_label) -> None:
        cls._check_roi_head(roi_head, old_classes, new_classes)
        if teacher_ckpt is None and not allow_random_teacher:
            raise ValueError(
                'model.teacher_ckpt is None: name the previous step\'s '
                'checkpoint (or set allow_random_teacher=True in tests)')
        check_dicts(distill=distill, pseudo_label=pseudo_label)
        unknown = sorted(set(distill or {}) - set(cls.distill_defaults))
        if unknown:
            raise ValueError(f'unknown distill keys {unknown}; known: '
                             f'{sorted(cls.distill_defaults)}')
        if (distill or {}).get('cls_mode', 'l2') not in ('l2', 'unbiased'):
            raise ValueError("distill.cls_mode must be 'l2' or 'unbiased'")
        for key, modes in (('rpn_mode', RPN_MODES),
                           ('feat_mode', FEAT_MODES)):
            value = (distill or {}).get(key, DISTILL_DEFAULTS[key])
            if value not in modes:
                raise ValueError(f'distill.{key} must be one of {modes}, '
                                 f'got {value!r}')
        loss_cls = roi_head['bbox_head'].get('loss_cls') or {}
        if cfg_type_name(loss_cls) == 'UnbiasedCrossEntropyLoss':
            got = loss_cls.get('num_old_classes')
            if got != len(old_classes):
                raise ValueError(
                    'roi_head.bbox_head.loss_cls.num_old_classes is '
                    f'{got}, but old_classes {list(old_classes)} are '
                    f'{len(old_classes)}')
            if pseudo_label:
                raise ValueError(
                    'UnbiasedCrossEntropyLoss and pseudo_label do not go '
                    'together: the unbiased loss treats background as '
                    '"background or an old class" because old objects are '
                    'unlabelled, but pseudo-labels label them, so RoIs on '
                    'badly placed old-class boxes would never be taught '
                    'not to be that class. Use CrossEntropyLoss with '
                    'pseudo-labels, or drop pseudo_label')
        check_values(distill or {}, pseudo_label or {}, DISTILL_DEFAULTS,
                     cls.loss_weights)

    @property
    def teacher(self) -> TwoStageDetector:
        """The frozen previous model (not a submodule)."""
        return self._teacher[0]

    @property
    def uses_teacher(self) -> bool:
        """Whether a training step runs the teacher."""
        return self.pseudo_label is not None or any(
            self.distill[k] > 0 for k in self.loss_weights)

    def init_weights(self) -> None:
        """Initialise as configured, then copy the teacher with its heads
        grown to the old + new classes (class surgery, with the run's seed).

        Class-agnostic layers (``reg_class_agnostic`` box regression, a
        ``class_agnostic`` mask head) are the teacher's, unchanged: with a
        single old class they have the shape of class-specific ones, which
        the surgery would grow.
        """
        super().init_weights()
        classes = self.old_classes + self.new_classes
        sources = build_class_mapping(self.old_classes, classes)
        state = remap_state_dict(
            self.teacher.state_dict(), len(self.old_classes), sources,
            seed=torch.initial_seed(),
            class_agnostic=self._class_agnostic_layers())
        self.load_state_dict(state, strict=True)

    def _class_agnostic_layers(self) -> List[str]:
        """The layers whose outputs do not depend on the classes (4 box
        deltas, 1 mask channel), for :func:`remap_state_dict`."""
        layers = []
        if getattr(self.roi_head.bbox_head, 'reg_class_agnostic', False):
            layers.append('roi_head.bbox_head.fc_reg')
        mask_head = getattr(self.roi_head, 'mask_head', None)
        if getattr(mask_head, 'class_agnostic', False):
            layers.append('roi_head.mask_head.conv_logits')
        return layers

    def _capture_rpn(self, module, args, output) -> None:
        if self._capture is not None:
            self._capture['rpn'] = output

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """Backbone and neck features, kept for distillation in ``loss``.

        Args:
            batch_inputs (Tensor): Images ``(N, 3, H, W)``.

        Returns:
            tuple[Tensor]: Multi-level features.
        """
        x = super().extract_feat(batch_inputs)
        if self._capture is not None:
            self._capture['feats'] = x
        return x

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Faster R-CNN's losses plus the configured distillation.

        Args:
            batch_inputs (Tensor): Images ``(N, 3, H, W)``.
            batch_data_samples (SampleList): With ``gt_instances`` of the
                new classes.

        Returns:
            dict[str, Tensor]: The losses.
        """
        if not self.uses_teacher:
            return super().loss(batch_inputs, batch_data_samples)
        teacher = self._teacher_on(batch_inputs.device)
        with torch.no_grad():
            out = self._teacher_forward(teacher, batch_inputs,
                                        batch_data_samples)
        if self.pseudo_label is not None:
            batch_data_samples = self._with_pseudo_labels(
                teacher, out, batch_data_samples)
        self._capture = {}
        try:
            losses = super().loss(batch_inputs, batch_data_samples)
            captured = self._capture
        finally:
            self._capture = None
        losses.update(self._distill_losses(captured, out))
        return losses

    def _teacher_on(self, device: torch.device) -> TwoStageDetector:
        teacher = self.teacher
        if next(teacher.parameters()).device != device:
            teacher.to(device)
        return teacher.eval()

    def _teacher_forward(self, teacher: TwoStageDetector, inputs: Tensor,
                         samples: SampleList) -> dict:
        """Teacher features, RPN outputs, proposals and RoI outputs."""
        feats = teacher.extract_feat(inputs)
        rpn_cls, rpn_reg = teacher.rpn_head(feats)
        metas = [s.metainfo for s in samples]
        props = teacher.rpn_head.predict_by_feat(
            rpn_cls, rpn_reg, batch_img_metas=metas,
            cfg=teacher.test_cfg.rpn, rescale=False)
        rois = bbox2roi([p.bboxes for p in props])
        out = dict(feats=feats, rpn_cls=rpn_cls, rpn_reg=rpn_reg, rois=rois,
                   nums=[len(p) for p in props], metas=metas)
        if len(rois):
            res = teacher.roi_head._bbox_forward(feats, rois)
            out.update(cls=res['cls_score'], reg=res['bbox_pred'])
            if self.distill['ard'] > 0:  # (R, D, 7, 7): kept only if used
                out['roi_feats'] = res['bbox_feats']
        return out

    def _with_pseudo_labels(self, teacher: TwoStageDetector, out: dict,
                            samples: SampleList) -> SampleList:
        """Copies of ``samples`` with the kept pseudo-labels added."""
        if not len(out['rois']):
            return samples
        result = []
        for sample, kept in zip(samples,
                                self._pseudo_labels(teacher, out, samples)):
            sample = copy.copy(sample)
            sample.gt_instances = add_pseudo_labels(sample.gt_instances,
                                                    kept)
            result.append(sample)
        return result

    def _pseudo_labels(self, teacher: TwoStageDetector, out: dict,
                       samples: SampleList) -> List[InstanceData]:
        """The teacher's kept detections per image (``bboxes``,
        ``labels``), from its RoI outputs ``out`` (not empty)."""
        nums = out['nums']
        preds = teacher.roi_head.bbox_head.predict_by_feat(
            rois=out['rois'].split(nums), cls_scores=out['cls'].split(nums),
            bbox_preds=out['reg'].split(nums), batch_img_metas=out['metas'],
            rcnn_test_cfg=teacher.test_cfg.rcnn, rescale=False)
        return [filter_pseudo_labels(pred, sample.gt_instances,
                                     **self.pseudo_label)
                for sample, pred in zip(samples, preds)]

    def _distill_rois(self, out: dict) -> Tensor:
        """Rows of the teacher's RoIs to distil on (ILOD's sampling)."""
        picks: List[Tensor] = []
        start = 0
        bg = out['cls'].softmax(dim=1)[:, -1]
        for num in out['nums']:
            order = bg[start:start + num].argsort()
            cand = order[:self.distill['num_candidates']]
            perm = torch.randperm(len(cand), device=cand.device)
            picks.append(cand[perm[:self.distill['num_rois']]] + start)
            start += num
        return torch.cat(picks)

    def _distill_losses(self, captured: dict, out: dict) -> dict:
        """The weighted distillation losses (only those switched on)."""
        w = self.distill
        feats = captured['feats']
        losses = {}
        if w['feat'] > 0:
            losses['loss_distill_feat'] = w['feat'] * feature_distill(
                feats, out['feats'], mode=w['feat_mode'])
        if w['rpn'] > 0:
            s_cls, s_reg = captured['rpn']
            losses['loss_distill_rpn'] = w['rpn'] * rpn_distill(
                s_cls, s_reg, out['rpn_cls'], out['rpn_reg'],
                mode=w['rpn_mode'])
        if all(w[k] <= 0 for k in self.roi_loss_weights):
            return losses
        idx = self._distill_rois(out) if len(out['rois']) else None
        if idx is not None and not len(idx):
            idx = None
        losses.update(self._roi_distill_losses(feats, out, idx))
        return losses

    def _roi_distill_losses(self, feats: Tuple[Tensor], out: dict,
                            idx: Optional[Tensor]) -> dict:
        """Losses on the teacher's RoIs ``out['rois'][idx]`` (``idx``
        None: no RoI, the losses are zeros that keep the graph)."""
        w = self.distill
        zero = feats[0].sum() * 0
        losses = {}
        if all(w[k] <= 0 for k in ('cls', 'reg', 'ard')):
            return losses
        if idx is None:
            s_cls = s_reg = t_cls = t_reg = None
        else:
            res = self.roi_head._bbox_forward(feats, out['rois'][idx])
            s_cls, s_reg = res['cls_score'], res['bbox_pred']
            t_cls, t_reg = out['cls'][idx], out['reg'][idx]
        if w['ard'] > 0:
            losses['loss_distill_ard'] = zero if s_cls is None else \
                w['ard'] * attentive_roi_distill(
                    res['bbox_feats'], out['roi_feats'][idx],
                    gamma=w['ard_gamma'])
        if w['cls'] > 0:
            fn = (unbiased_logit_distill if w['cls_mode'] == 'unbiased'
                  else ilod_logit_distill)
            losses['loss_distill_cls'] = zero if s_cls is None else \
                w['cls'] * fn(s_cls, t_cls)
        if w['reg'] > 0:
            losses['loss_distill_reg'] = zero if s_reg is None else \
                w['reg'] * box_delta_distill(s_reg, t_reg)
        return losses
