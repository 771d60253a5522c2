"""Checks of an incremental step's ``distill`` and ``pseudo_label`` values."""

__all__ = ['check_dicts', 'check_values']

WEIGHTS = ('ard_gamma', )  # besides the model's loss_weights
COUNTS = ('num_candidates', 'num_rois')


def check_values(distill: dict, pseudo_label: dict, defaults: dict,
                 loss_weights: tuple) -> None:
    """Refuse values that would switch a loss off without a word.

    Args:
        distill (dict): The model's ``distill`` settings (keys already
            checked).
        pseudo_label (dict): Its ``pseudo_label`` settings.
        defaults (dict): The defaults of ``distill``.
        loss_weights (tuple): The model's distillation weight keys (the
            Mask R-CNN adds ``mask``).

    Raises:
        ValueError: For an unknown pseudo_label key, a negative weight, no
            RoI to distil
            (``num_rois`` / ``num_candidates`` under 1) or a threshold
            outside [0, 1], naming the key.
    """
    for key in tuple(loss_weights) + WEIGHTS:
        value = distill.get(key, 0.0)
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f'distill.{key} must be a number >= 0 (0 '
                             f'switches it off), got {value!r}')
    for key in COUNTS:
        value = distill.get(key, defaults[key])
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'distill.{key} must be an integer >= 1, got '
                             f'{value!r}')
    unknown = sorted(set(pseudo_label) - {'score_thr', 'iou_thr'})
    if unknown:
        raise ValueError(f'unknown pseudo_label keys {unknown}; known: '
                         "['iou_thr', 'score_thr']")
    for key, value in pseudo_label.items():
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f'pseudo_label.{key} must be in [0, 1], got '
                             f'{value!r}')


_EXAMPLES = dict(distill='dict(cls=1.0, reg=1.0)',
                 pseudo_label='dict(score_thr=0.5, iou_thr=0.5)')


def check_dicts(**settings) -> None:
    """Refuse a model setting that should be a dict but is not (a
    ``pseudo_label=True`` switch), naming the key and an example.

    Raises:
        ValueError: For a value that is neither a dict nor None.
    """
    for key, value in settings.items():
        if value is not None and not isinstance(value, dict):
            raise ValueError(f'model.{key} must be a dict or None, got '
                             f'{value!r} (e.g. {_EXAMPLES[key]})')
