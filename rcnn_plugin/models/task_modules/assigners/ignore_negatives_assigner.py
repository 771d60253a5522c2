"""A MaxIoUAssigner whose ignore regions only take away negatives.

Shapes: ``P`` candidates (anchors or proposals), ``G`` ground-truth boxes,
``I`` ignored boxes.
"""
from typing import Optional

from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData


@TASK_UTILS.register_module()
class IgnoreNegativesAssigner(MaxIoUAssigner):
    """``MaxIoUAssigner`` where ignore regions never remove a positive.

    mmdet's ``MaxIoUAssigner`` drops every candidate that overlaps an
    ignored box by more than ``ignore_iof_thr`` before it assigns, so a
    labelled object lying on an ignored one loses its own anchors and
    proposals (in a K-shot split: a picked platelet on an unpicked RBC with
    the candidate-area rule, a picked WBC over an unpicked platelet with
    the ignored-box-area rule). Here the assignment is made without the
    ignored boxes, and only candidates that it made negatives are then
    ignored when they overlap an ignored box by more than
    ``ignore_iof_thr`` (measured as ``ignore_wrt_candidates`` says).
    Positives, and ``match_low_quality`` positives, stay as they are.

    Args:
        **kwargs: ``MaxIoUAssigner``'s arguments; ``ignore_iof_thr`` must
            be > 0 (otherwise use ``MaxIoUAssigner``).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if not self.ignore_iof_thr > 0:
            raise ValueError(
                'IgnoreNegativesAssigner needs ignore_iof_thr > 0, got '
                f'{self.ignore_iof_thr}; without ignore regions use '
                'MaxIoUAssigner')

    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               **kwargs) -> AssignResult:
        """Assign as ``MaxIoUAssigner`` without the ignored boxes, then
        ignore the negatives that lie on them.

        Args:
            pred_instances (InstanceData): ``priors`` (P, 4).
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels``.
            gt_instances_ignore (InstanceData, optional): ``bboxes``
                (I, 4) of the ignored instances. Defaults to None.
            **kwargs: Passed to ``MaxIoUAssigner.assign``.

        Returns:
            AssignResult: ``gt_inds`` -1 for the ignored negatives.
        """
        result = super().assign(pred_instances, gt_instances, None,
                                **kwargs)
        if gt_instances_ignore is None:
            return result
        ignore = gt_instances_ignore.bboxes
        priors = pred_instances.priors
        if len(ignore) == 0 or len(priors) == 0:
            return result
        ignore = ignore.to(priors.device)
        if self.ignore_wrt_candidates:
            iof = self.iou_calculator(priors, ignore, mode='iof')
            hit = iof.max(dim=1).values > self.ignore_iof_thr
        else:
            iof = self.iou_calculator(ignore, priors, mode='iof')
            hit = iof.max(dim=0).values > self.ignore_iof_thr
        hit = hit.to(result.gt_inds.device)
        result.gt_inds[hit & (result.gt_inds == 0)] = -1
        return result
