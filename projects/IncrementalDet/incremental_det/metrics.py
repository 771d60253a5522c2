"""AP50 of the old classes, the new classes and all, and the forgetting."""
from typing import Optional, Sequence

import numpy as np
from mmdet.evaluation.functional import eval_map
from mmdet.evaluation.metrics import VOCMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger


@METRICS.register_module()
class IncrementalVOCMetric(VOCMetric):
    """VOC AP50 split into old / new / all classes.

    Class means skip classes without ground truth in the evaluated split,
    as :func:`eval_map`'s mAP does. Keys: ``old_AP50``, ``new_AP50``,
    ``all_AP50``, ``AP50_<class>``, and ``forgetting`` (old-class AP50
    before minus after) when ``reference_old_ap50`` is given.

    Args:
        old_classes (Sequence[str]): The previous model's classes; every
            other class of the dataset is new.
        reference_old_ap50 (float, optional): Old-class AP50 of the
            previous model on the same split. Defaults to None.
        **kwargs: :class:`VOCMetric` arguments (``eval_mode``,
            ``collect_device``, ``prefix``); the IoU threshold (0.5), the
            metric and scale ranges are fixed, and naming them is an error.
    """

    default_prefix: Optional[str] = 'incremental'

    def __init__(self,
                 old_classes: Sequence[str],
                 reference_old_ap50: Optional[float] = None,
                 **kwargs) -> None:
        fixed = sorted(set(kwargs) & {'iou_thrs', 'metric', 'scale_ranges',
                                      'proposal_nums'})
        if fixed:
            raise ValueError(
                f'{type(self).__name__} does not take {fixed}: it reports '
                'AP50 (iou_thrs 0.5, metric mAP) over all object sizes; use '
                "mmdet's VOCMetric beside it for other thresholds or sizes")
        kwargs.setdefault('eval_mode', 'area')
        super().__init__(iou_thrs=0.5, metric='mAP', **kwargs)
        self.old_classes = tuple(old_classes)
        if reference_old_ap50 is not None and not (
                isinstance(reference_old_ap50, (int, float))
                and 0 <= reference_old_ap50 <= 1):
            raise ValueError(
                f'reference_old_ap50 must be a fraction in [0, 1] (AP50 '
                f'as the metric reports it, e.g. 0.847), got '
                f'{reference_old_ap50!r}')
        self.reference_old_ap50 = reference_old_ap50

    def compute_metrics(self, results: list) -> dict:
        """Per-class AP50 and its old / new / all means.

        Args:
            results (list): ``(gt, pred)`` pairs from ``process``.

        Returns:
            dict: The metrics.

        Raises:
            ValueError: If an old class is not a dataset class, or no image
                was evaluated.
        """
        classes = list(self.dataset_meta['classes'])
        unknown = [c for c in self.old_classes if c not in classes]
        if unknown:
            raise ValueError(f'old_classes {unknown} are not classes of '
                             f'the evaluated dataset {classes}')
        if not results:  # mmengine only warns, then calls us with nothing
            raise ValueError(
                f'{type(self).__name__}: no image was evaluated (the split '
                f'of classes {classes} is empty): check its ann_file and '
                'classes')
        gts, preds = zip(*results)
        _, per_class = eval_map(
            list(preds), list(gts), iou_thr=0.5, dataset=classes,
            logger=MMLogger.get_current_instance(),
            eval_mode=self.eval_mode, use_legacy_coordinate=True)
        aps = {c: float(r['ap']) for c, r in zip(classes, per_class)
               if r['num_gts'] > 0}
        out = {f'AP50_{c}': round(ap, 4) for c, ap in aps.items()}
        groups = dict(old=[c for c in classes if c in self.old_classes],
                      new=[c for c in classes if c not in self.old_classes],
                      all=classes)
        for name, names in groups.items():
            vals = [aps[c] for c in names if c in aps]
            out[f'{name}_AP50'] = round(float(np.mean(vals)), 4) \
                if vals else float('nan')
        if self.reference_old_ap50 is not None:
            out['forgetting'] = round(
                self.reference_old_ap50 - out['old_AP50'], 4)
        return out
