"""The class name of a config's ``type``, however the config wrote it.

mmengine builds from a registered name (``'Resize'``), a scoped name
(``'mmdet.Resize'``) or, in pure-Python configs, the class itself
(``type=Resize``). A check that compares ``cfg['type'] == 'Resize'`` sees
only the first and passes the other two by silently; ``str(cls)`` is
``"<class '...Resize'>"``, not a name. Checks of a user's config compare
types through :func:`type_name`. Where a registry name differs from the
class's (mmengine registers ``PretrainedInit`` as ``'Pretrained'``), the
check names both.
"""
from typing import Any, Iterator, Optional, Tuple

__all__ = [
    'by_epoch', 'cfg_type_name', 'iter_pipeline_steps', 'lists_for_tuples',
    'type_name'
]


def type_name(kind: Any) -> str:
    """The class name of a ``type``: a name, a scoped name or a class.

    Returns ``''`` for None and for anything with neither a name nor a
    ``__name__``.
    """
    if isinstance(kind, str):
        return kind.split('.')[-1]
    return getattr(kind, '__name__', '')


def cfg_type_name(cfg: Any, default: Any = '') -> str:
    """:func:`type_name` of ``cfg['type']`` (``default`` where a dict has
    no ``type``); ``''`` for anything that is not a dict."""
    if not isinstance(cfg, dict):
        return ''
    return type_name(cfg.get('type', default))


def iter_pipeline_steps(pipeline: Any, top: Optional[int] = None
                        ) -> Iterator[Tuple[int, dict]]:
    """The step configs of a pipeline config in the order the data meets
    them, with the index of the top-level step each belongs to.

    Steps that hold ``transforms`` (mmdet's ``ProposalBroadcaster``,
    mmcv's ``RandomApply`` / ``RandomChoice``) are followed by their inner
    steps first, and ``TestTimeAug``'s list of lists in order (each
    augmented copy takes one step of each inner list).

    Args:
        pipeline (Any): A list of step configs (anything else: no steps).
        top (int, optional): The top-level index to report (inner calls).

    Yields:
        tuple[int, dict]: The top-level index and the step config.
    """
    if not isinstance(pipeline, (list, tuple)):
        return
    for i, step in enumerate(pipeline):
        at = i if top is None else top
        if isinstance(step, (list, tuple)):
            yield from iter_pipeline_steps(step, at)
        elif isinstance(step, dict):
            yield from iter_pipeline_steps(step.get('transforms'), at)
            yield at, step


def by_epoch(cfg: Any) -> bool:
    """Whether a config's train loop counts epochs (mmengine's
    ``EpochBasedTrainLoop``, a subclass named so, or ``by_epoch=True``)."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'type' not in train_cfg:
        return bool(train_cfg.get('by_epoch', True))
    return cfg_type_name(train_cfg).endswith('EpochBasedTrainLoop')


def lists_for_tuples(value: Any) -> Any:
    """A config value with every tuple as a list, nested, for comparing
    what a config file writes (tuples) with what ``--cfg-options`` or a
    dump writes (lists)."""
    if isinstance(value, (list, tuple)):
        return [lists_for_tuples(v) for v in value]
    if isinstance(value, dict):
        return {k: lists_for_tuples(v) for k, v in value.items()}
    return value
