"""Whether the box classifier is no better than calling every RoI
background, and what to tell the user (``TrainingHealthHook``)."""
import math
from statistics import mean
from typing import Optional, Sequence, Tuple

__all__ = ['check_collapse', 'classifier_collapse', 'classifier_stats',
           'collapse_message']

MEASURED = 'measured on the RoIs'
# An epoch counts as "the classifier has learned" when its acc beats the
# measured background share by this many margins (one point above it can be
# noise: kitti_yolo's lr 0.005 run had one such epoch inside its slow start).
LEARNED_MARGINS = 3


def classifier_stats(records: Sequence[Tuple[int, float, Optional[float]]],
                     pos_fraction: Optional[float] = None
                     ) -> Optional[dict]:
    """Mean ``acc`` and background share over the second half of
    ``records``.

    The share is the measured one when every record has it; otherwise
    ``1 - pos_fraction``, a lower bound for a sampler that fills its quota
    with negatives.

    Args:
        records (Sequence[tuple]): ``(iteration, acc in %, share of
            background RoIs in [0, 1] or None)`` per iteration.
        pos_fraction (float, optional): The sampler's ``pos_fraction``,
            for the fallback. Defaults to None.

    Returns:
        dict, optional: ``acc``, ``background`` (both in %), ``how``,
        ``first`` and ``last`` iteration; None when nothing can be said.
    """
    recs = list(records)[len(records) // 2:]
    if not recs:
        return None
    acc = mean(r[1] for r in recs)
    if all(r[2] is not None and math.isfinite(r[2]) for r in recs):
        bg, how = 100 * mean(r[2] for r in recs), MEASURED
    elif pos_fraction is not None:
        bg, how = 100 * (1 - pos_fraction), '100 x (1 - pos_fraction)'
    else:
        return None
    return dict(acc=acc, background=bg, how=how, first=recs[0][0],
                last=recs[-1][0])


def classifier_collapse(records: Sequence[Tuple[int, float,
                                                Optional[float]]],
                        margin: float = 1.0,
                        pos_fraction: Optional[float] = None
                        ) -> Optional[dict]:
    """Whether the bbox classifier is no better than all-background.

    The fallback share (``1 - pos_fraction``) is a lower bound, so it never
    flags a classifier that beats all-background.

    Args:
        records (Sequence[tuple]): As :func:`classifier_stats`.
        margin (float): Points of ``acc`` above the share that a working
            classifier must reach. Defaults to 1.0.
        pos_fraction (float, optional): The sampler's ``pos_fraction``,
            for the fallback. Defaults to None.

    Returns:
        dict, optional: :func:`classifier_stats` when collapsed, else None
        (also when nothing can be said).
    """
    stats = classifier_stats(records, pos_fraction)
    if stats is None or stats['acc'] > stats['background'] + margin:
        return None
    return stats


def check_collapse(records, margin: float, pos_fraction: Optional[float],
                   learned_at: Optional[int], progress: Optional[float]
                   ) -> Tuple[Optional[dict], Optional[str], Optional[int]]:
    """One epoch's check: the finding, its phase, and when it learned.

    Args:
        records (Sequence[tuple]): As :func:`classifier_stats`.
        margin (float): As :func:`classifier_collapse`.
        pos_fraction (float, optional): As :func:`classifier_collapse`.
        learned_at (int, optional): The iteration at which an earlier
            check saw the classifier beat the measured background share by
            ``LEARNED_MARGINS`` margins; None if none did.
        progress (float, optional): Fraction of the schedule done; None
            if unknown.

    Returns:
        tuple: The collapse (:func:`classifier_stats`) or None; its phase
        (``'learned'``: it had learned and fell back; ``'early'``: not yet
        learned in the first half of the schedule; ``'late'``: not yet
        learned after it, or progress unknown) or None; and the updated
        ``learned_at``.
    """
    stats = classifier_stats(records, pos_fraction)
    if stats is None:
        return None, None, learned_at
    lead = stats['acc'] - stats['background']
    if lead > margin:
        if (learned_at is None and stats['how'] == MEASURED
                and lead > LEARNED_MARGINS * margin):
            learned_at = stats['last']
        return None, None, learned_at
    if learned_at is not None:
        phase = 'learned'
    else:
        phase = 'early' if progress is not None and progress < 0.5 \
            else 'late'
    return stats, phase, learned_at


def collapse_message(found: dict, margin: float, phase: str) -> str:
    """The finding and its fix for a collapse of phase ``phase``.

    A classifier that has never beaten all-background is told apart from
    one that did and fell back: early in a fine-tune on a small dataset
    the first is usually a slow start (the RPN's proposals are still poor),
    and lowering the lr, the fix for the second, slows it further. Our
    one-command fine-tunes of kitti_yolo (epochs 11-15 of 40 at lr 0.005,
    11-12 at lr 0.01) and balloon (epochs 4-6 of 13) showed it and
    recovered (docs/finetune.md).

    Args:
        found (dict): What :func:`check_collapse` found.
        margin (float): Points of ``acc`` above the background share.
        phase (str): ``'learned'``, ``'early'`` or ``'late'``.

    Returns:
        str: Two lines: what was measured, and what to do.
    """
    what = (f'mean acc {found["acc"]:.1f} % over iterations '
            f'{found["first"]}-{found["last"]} is not more than {margin:g} '
            f'point above the background share {found["background"]:.1f} % '
            f'({found["how"]}): it is no better than calling every RoI '
            'background.')
    if phase == 'learned':
        return ('the classifier collapsed after it had beaten '
                f'all-background: {what}\nFix: lower the lr, check that the '
                'classes match the annotations, or check the sampler '
                '(pos_iou_thr, pos_fraction).')
    head = f'the classifier has not yet beaten all-background: {what}\n'
    if phase == 'early':
        return head + (
            'In the first half of a fine-tune on a small dataset this is '
            'usually a slow start that recovers within a few epochs (only '
            'warned, whatever collapse= says); a lower lr slows it further.'
            ' If it lasts past half of the schedule: check that the '
            'classes match the annotations and the sampler (pos_iou_thr, '
            'pos_fraction), or train longer.')
    return head + (
        'Fix: check that the classes match the annotations and the sampler '
        '(pos_iou_thr, pos_fraction); if they do, train longer or raise '
        'the lr (a run that is slow to start is not helped by a lower lr).')
