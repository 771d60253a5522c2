"""Whether the box classifier is no better than calling every RoI
background, and what to tell the user (``TrainingHealthHook``)."""
import math
from statistics import mean
from typing import Optional, Sequence, Tuple

__all__ = ['classifier_collapse', 'collapse_message']


def classifier_collapse(records: Sequence[Tuple[int, float,
                                                Optional[float]]],
                        margin: float = 1.0,
                        pos_fraction: Optional[float] = None
                        ) -> Optional[dict]:
    """Whether the bbox classifier is no better than all-background.

    Uses the second half of ``records``. With a measured background share
    for every record, the mean ``acc`` is compared with the mean share;
    otherwise with ``1 - pos_fraction``, a lower bound of the share for
    a sampler that fills its quota with negatives, so the fallback never
    flags a classifier that beats all-background.

    Args:
        records (Sequence[tuple]): ``(iteration, acc in %, share of
            background RoIs in [0, 1] or None)`` per iteration.
        margin (float): Points of ``acc`` above the share that a working
            classifier must reach. Defaults to 1.0.
        pos_fraction (float, optional): The sampler's ``pos_fraction``,
            for the fallback. Defaults to None.

    Returns:
        dict, optional: ``acc``, ``background`` (both in %), ``how``,
        ``first`` and ``last`` iteration when collapsed, else None (also
        when nothing can be said).
    """
    recs = list(records)[len(records) // 2:]
    if not recs:
        return None
    acc = mean(r[1] for r in recs)
    if all(r[2] is not None and math.isfinite(r[2]) for r in recs):
        bg, how = 100 * mean(r[2] for r in recs), 'measured on the RoIs'
    elif pos_fraction is not None:
        bg, how = 100 * (1 - pos_fraction), '100 x (1 - pos_fraction)'
    else:
        return None
    if acc > bg + margin:
        return None
    return dict(acc=acc, background=bg, how=how, first=recs[0][0],
                last=recs[-1][0])


def collapse_message(found: dict, margin: float, learned: bool) -> str:
    """The finding and its fix for :func:`classifier_collapse`.

    A classifier that has never beaten all-background is told apart from
    one that did and fell back: early in a fine-tune on a small dataset
    the first is usually a slow start (the RPN's proposals are still poor),
    and lowering the lr, the fix for the second, slows it further. Our
    one-command fine-tunes of kitti_yolo (epochs 11-15) and balloon
    (epochs 4-6) showed it and recovered (docs/finetune.md).

    Args:
        found (dict): What :func:`classifier_collapse` returned.
        margin (float): Points of ``acc`` above the background share.
        learned (bool): Whether an earlier check found the classifier
            better than all-background.

    Returns:
        str: Two lines: what was measured, and what to do.
    """
    what = (f'mean acc {found["acc"]:.1f} % over iterations '
            f'{found["first"]}-{found["last"]} is not more than {margin:g} '
            f'point above the background share {found["background"]:.1f} % '
            f'({found["how"]}): it is no better than calling every RoI '
            'background.')
    if learned:
        return ('the classifier collapsed after it had beaten '
                f'all-background: {what}\nFix: lower the lr, check that the '
                'classes match the annotations, or check the sampler '
                '(pos_iou_thr, pos_fraction).')
    return ('the classifier has not yet beaten all-background: '
            f'{what}\nEarly in a fine-tune on a small dataset this is '
            'usually a slow start that recovers within a few epochs; a '
            'lower lr slows it further. If it lasts past the first third '
            'of the schedule: check that the classes match the annotations'
            ' and the sampler (pos_iou_thr, pos_fraction), or train longer.')
