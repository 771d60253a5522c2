"""Mean-teacher domain adaptation (Adaptive-Teacher style) on mmdet's
``SemiBaseDetector`` and ``MeanTeacherHook``.

Branches (mmdet's semi-supervised names): ``sup`` labelled source images,
``unsup_teacher`` weak views and ``unsup_student`` strong views of the same
unlabelled target images. The EMA teacher (``MeanTeacherHook``) predicts
on the weak view; predictions above ``semi_train_cfg.cls_pseudo_thr``
become the student's targets on the strong view. With an optional
image-level discriminator behind gradient reversal (Li et al., CVPR 2022)
on the student's features, source (0) against target (1).

Source-free (``source_free=True``, issue 21 part 3): only the source
model and unlabelled target images exist. Student and teacher both start
from the source model (``load_from``) and the student self-trains on the
teacher's pseudo-labels, with no ``sup`` branch and no discriminator.
"""
import logging
from typing import Dict, Optional

import torch
from mmdet.models.detectors import SemiBaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from torch import Tensor

from .domain_classifiers import check_weight, neck_channels

__all__ = ['DomainAdaptiveTeacher']


@MODELS.register_module()
class DomainAdaptiveTeacher(SemiBaseDetector):
    """Mean teacher for unlabelled target images, with a discriminator.

    A step where no teacher prediction passes ``cls_pseudo_thr`` is a
    normal step: the student sees empty targets on the target images,
    the pseudo-label losses are weighted 0 (mmdet's ``SemiBaseDetector``;
    the discriminator's ``unsup_loss_disc`` still applies) and
    ``unsup_num_pseudo`` (logged, not back-propagated) records 0. Each
    run of fifty such steps in a row gets a warning.

    Args:
        detector (ConfigType): The detector of student and teacher.
        semi_train_cfg (OptConfigType): ``cls_pseudo_thr``,
            ``sup_weight``, ``unsup_weight``, ``min_pseudo_bbox_wh``,
            ``freeze_teacher`` as in mmdet. Defaults to None.
        semi_test_cfg (OptConfigType): ``predict_on`` (``'teacher'``).
            Defaults to None.
        discriminator (OptConfigType): Image-level domain classifier, e.g.
            ``dict(type='ImageDomainClassifier')`` (``in_channels``
            defaults to the neck's ``out_channels``); None for a plain
            mean teacher. Defaults to None.
        disc_weight (float): Weight of the discriminator loss.
            Defaults to 0.1.
        source_free (bool): Train without source images: batches hold
            only the ``unsup_teacher`` and ``unsup_student`` branches.
            Needs the source model as ``load_from`` and no
            discriminator. Defaults to False.
        data_preprocessor (OptConfigType): ``MultiBranchDataPreprocessor``
            config. Defaults to None.
        init_cfg (OptMultiConfig): Initialisation config. Defaults to None.
    """

    # consecutive steps without a pseudo-label that get a warning
    NO_PSEUDO_WARN = 50

    def __init__(self,
                 detector: ConfigType,
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 discriminator: OptConfigType = None,
                 disc_weight: float = 0.1,
                 source_free: bool = False,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        # ConfigDicts: mmdet's SemiBaseDetector reads them by attribute.
        semi_train_cfg = ConfigDict(semi_train_cfg or dict(cls_pseudo_thr=0.7))
        if 'cls_pseudo_thr' not in semi_train_cfg:
            raise ValueError('semi_train_cfg needs cls_pseudo_thr, the '
                             'score above which a teacher box is a target')
        if source_free and discriminator:
            raise ValueError(
                'model.discriminator needs source images (source 0 against '
                'target 1); source_free=True has none: set '
                'discriminator=None')
        self.source_free = bool(source_free)
        super().__init__(
            detector=detector, semi_train_cfg=semi_train_cfg,
            semi_test_cfg=ConfigDict(semi_test_cfg
                                     or dict(predict_on='teacher')),
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.discriminator = None
        if discriminator:
            disc = dict(discriminator)
            if 'in_channels' not in disc:
                disc['in_channels'] = neck_channels(detector.get('neck'),
                                                    'discriminator')
            self.discriminator = MODELS.build(disc)
        self.disc_weight = check_weight('disc_weight', disc_weight)
        self._feats: Optional[tuple] = None
        self._steps_without_pseudo = 0
        if self.discriminator is not None:
            grab = self.student.neck if self.student.with_neck \
                else self.student.backbone
            grab.register_forward_hook(self._keep_feats)

    def _keep_feats(self, module, args, output) -> None:
        self._feats = tuple(output)

    def _disc_loss(self, domain: int) -> dict:
        if self.discriminator is None or self._feats is None:
            return {}
        logits = self.discriminator(self._feats)
        self._feats = None
        key = 'sup_loss_disc' if domain == 0 else 'unsup_loss_disc'
        return {key: self.disc_weight * self.discriminator.loss(
            logits, domain)}

    def loss(self, multi_batch_inputs: Dict[str, Tensor],
             multi_batch_data_samples: Dict[str, SampleList]) -> dict:
        """Supervised losses on the ``sup`` branch, unless source-free,
        and the student's losses against the teacher's pseudo-labels.

        Args:
            multi_batch_inputs (dict[str, Tensor]): Images per branch.
            multi_batch_data_samples (dict[str, SampleList]): Samples per
                branch.

        Returns:
            dict: Losses prefixed ``sup_`` (with source images) and
            ``unsup_``.

        Raises:
            ValueError: If the ``sup`` branch is missing without
                ``source_free``, or present with it.
        """
        has_source = 'sup' in multi_batch_inputs
        if has_source == self.source_free:
            branches = sorted(multi_batch_inputs)
            raise ValueError(
                f'the batch has the branches {branches}, but '
                f'model.source_free={self.source_free}: '
                + ('source-free adaptation trains on target images only; '
                   "drop the source dataset and the 'sup' branch"
                   if self.source_free else
                   "the mean teacher needs labelled source images ('sup'); "
                   'for adaptation without them set source_free=True'))
        if has_source:
            return super().loss(multi_batch_inputs, multi_batch_data_samples)
        pseudo, batch_info = self.get_pseudo_instances(
            multi_batch_inputs['unsup_teacher'],
            multi_batch_data_samples['unsup_teacher'])
        student_samples = self.project_pseudo_instances(
            pseudo, multi_batch_data_samples['unsup_student'])
        return self.loss_by_pseudo_instances(
            multi_batch_inputs['unsup_student'], student_samples, batch_info)

    def loss_by_gt_instances(self, batch_inputs: Tensor,
                             batch_data_samples: SampleList) -> dict:
        """Student's supervised losses on source images (+ source
        discriminator loss).

        Args:
            batch_inputs (Tensor): (N, 3, H, W) source images.
            batch_data_samples (SampleList): Their samples with boxes.

        Returns:
            dict: Losses prefixed ``sup_``.
        """
        losses = super().loss_by_gt_instances(batch_inputs,
                                              batch_data_samples)
        losses.update(self._disc_loss(0))
        return losses

    def loss_by_pseudo_instances(self,
                                 batch_inputs: Tensor,
                                 batch_data_samples: SampleList,
                                 batch_info: Optional[dict] = None) -> dict:
        """Student's losses on the strong target views against the
        teacher's pseudo-labels (+ target discriminator loss).

        Args:
            batch_inputs (Tensor): (N, 3, H, W) strong target views.
            batch_data_samples (SampleList): Samples holding the projected
                pseudo-labels as ``gt_instances``.
            batch_info (dict, optional): Teacher information.
                Defaults to None.

        Returns:
            dict: Losses prefixed ``unsup_`` and ``unsup_num_pseudo``.
        """
        losses = super().loss_by_pseudo_instances(
            batch_inputs, batch_data_samples, batch_info)
        thr = self.semi_train_cfg.cls_pseudo_thr
        num = sum(int((s.gt_instances.scores > thr).sum())
                  for s in batch_data_samples
                  if 'scores' in s.gt_instances)
        losses['unsup_num_pseudo'] = torch.tensor(
            float(num), device=batch_inputs.device)
        self._note_pseudo(num)
        losses.update(self._disc_loss(1))
        return losses

    def _note_pseudo(self, num: int) -> None:
        """Warn once when the teacher has given no pseudo-label for
        :attr:`NO_PSEUDO_WARN` steps in a row: the pseudo-label losses then
        weigh 0 and the student learns nothing from the target (an
        untrained teacher: a missing or mismatched ``load_from``)."""
        self._steps_without_pseudo = 0 if num else \
            self._steps_without_pseudo + 1
        if self._steps_without_pseudo == self.NO_PSEUDO_WARN:
            print_log(
                f'{self.NO_PSEUDO_WARN} steps in a row without a teacher box '
                f'above cls_pseudo_thr={self.semi_train_cfg.cls_pseudo_thr}'
                ': the pseudo-label losses weigh 0, so nothing is learnt '
                'from the target. Is load_from the trained source model? '
                'Else lower semi_train_cfg.cls_pseudo_thr.', 'current',
                level=logging.WARNING)
