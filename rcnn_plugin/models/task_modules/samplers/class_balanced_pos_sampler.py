"""RoI sampler that gives every class present in an image the same share
of the positive RoIs.

Shapes: ``P`` positive RoIs of one image, ``K`` classes among them.
"""
from typing import List

import torch
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.models.task_modules.samplers import RandomSampler
from mmdet.registry import TASK_UTILS
from torch import Tensor


def balanced_quotas(counts: List[int], total: int,
                    generator: torch.Generator = None) -> List[int]:
    """Split ``total`` draws over classes as evenly as their sizes allow.

    Water-filling: every class gets the same quota, a class with fewer
    members than its quota gives all of them and its surplus goes to the
    others. When the draws do not divide evenly, the extra ones go to
    randomly chosen unsaturated classes, so quotas are equal on average.

    Args:
        counts (list[int]): Members per class, each >= 0.
        total (int): Draws wanted; at most ``sum(counts)`` are given.
        generator (torch.Generator, optional): For the remainder. Defaults
            to None (torch's global RNG).

    Returns:
        list[int]: Draws per class, ``quota[k] <= counts[k]``, summing to
        ``min(total, sum(counts))``.
    """
    quotas = [0] * len(counts)
    left = min(total, sum(counts))
    open_ks = [k for k, n in enumerate(counts) if n > 0]
    while left > 0 and open_ks:
        share = left // len(open_ks)
        if share == 0:  # fewer draws left than classes: random classes
            perm = torch.randperm(len(open_ks), generator=generator)
            for i in perm[:left].tolist():
                quotas[open_ks[i]] += 1
            break
        for k in open_ks:
            take = min(share, counts[k] - quotas[k])
            quotas[k] += take
            left -= take
        open_ks = [k for k in open_ks if quotas[k] < counts[k]]
    return quotas


@TASK_UTILS.register_module()
class ClassBalancedPosSampler(RandomSampler):
    """``RandomSampler`` whose positives are balanced over GT classes.

    With ``n_c`` positive RoIs of class ``c`` in the image and ``q`` draws
    per class (:func:`balanced_quotas`), each positive RoI of class ``c`` is
    kept with probability ``q / n_c``: inversely proportional to its
    class's frequency, so a rare class (WBC, platelets next to hundreds of
    RBC RoIs) is not crowded out. Within a class the draw is uniform without
    replacement. When all positives fit in the budget they are all kept, as
    with ``RandomSampler``. Negatives, ``neg_pos_ub`` and GT-as-proposals
    are ``RandomSampler``'s. Uses torch's global RNG, as ``RandomSampler``.

    Args:
        num (int): RoIs per image.
        pos_fraction (float): Fraction of positives, in ``[0, 1]``.
        neg_pos_ub (int): Upper bound of negatives per positive; -1 means
            none. Defaults to -1.
        add_gt_as_proposals (bool): Add GT boxes as proposals. Defaults to
            True.
        **kwargs: Passed to ``RandomSampler``.
    """

    def __init__(self,
                 num: int,
                 pos_fraction: float,
                 neg_pos_ub: int = -1,
                 add_gt_as_proposals: bool = True,
                 **kwargs) -> None:
        if not isinstance(num, int) or num <= 0:
            raise ValueError(f'num must be a positive int, got {num!r}')
        if not 0.0 <= pos_fraction <= 1.0:
            raise ValueError(
                f'pos_fraction must be in [0, 1], got {pos_fraction!r}')
        super().__init__(num, pos_fraction, neg_pos_ub, add_gt_as_proposals,
                         **kwargs)

    def _sample_pos(self, assign_result: AssignResult, num_expected: int,
                    **kwargs) -> Tensor:
        """Draw up to ``num_expected`` positives, balanced over classes.

        Args:
            assign_result (AssignResult): ``gt_inds > 0`` marks positives,
                ``labels`` their classes.
            num_expected (int): Positives wanted.
            **kwargs: Unused (``bboxes``).

        Returns:
            Tensor: Indices of the kept positives, shape ``(<= P,)``.
        """
        pos_inds = torch.nonzero(assign_result.gt_inds > 0).flatten()
        if pos_inds.numel() <= num_expected:
            return pos_inds
        if num_expected <= 0:  # pos_fraction 0, or num * pos_fraction < 1
            return pos_inds[:0]
        if assign_result.labels is None:
            raise ValueError('ClassBalancedPosSampler needs assign_result.'
                             'labels (the assigner got no gt labels)')
        labels = assign_result.labels[pos_inds]
        classes = torch.unique(labels)
        members = [pos_inds[labels == c] for c in classes]
        quotas = balanced_quotas([len(m) for m in members], num_expected)
        picked = [m[torch.randperm(len(m))[:q].to(m.device)]
                  for m, q in zip(members, quotas) if q > 0]
        return torch.cat(picked)
