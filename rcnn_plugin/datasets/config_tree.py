"""Walk dataset configs through their wrappers.

Wrappers (mmengine's ``RepeatDataset``, ``ClassBalancedDataset`` and
``ConcatDataset``, mmdet's ``MultiImageMixDataset``, the wrappers of this
package) hold the wrapped config under ``dataset``, or a list of them under
``datasets``. Keys such as ``test_mode`` or ``pipeline`` belong to the
innermost dataset, the one that reads the annotations: most wrappers do
not accept them.
"""
from typing import Any, Iterator, Tuple

__all__ = ['iter_dataset_cfgs', 'set_test_mode', 'update_inner_dataset_cfg']


def iter_dataset_cfgs(ds_cfg: Any, key: str) -> Iterator[Tuple[dict, str]]:
    """Yield the innermost dataset configs of (possibly wrapped) datasets.

    Args:
        ds_cfg (Any): A dataset config (dict) or anything else (ignored).
        key (str): Its dotted config key, e.g.
            ``'train_dataloader.dataset'``.

    Yields:
        tuple[dict, str]: Each leaf dataset config and its key.
    """
    if not isinstance(ds_cfg, dict):
        return
    if isinstance(ds_cfg.get('dataset'), dict):
        yield from iter_dataset_cfgs(ds_cfg['dataset'], f'{key}.dataset')
    elif isinstance(ds_cfg.get('datasets'), (list, tuple)):
        for i, sub in enumerate(ds_cfg['datasets']):
            yield from iter_dataset_cfgs(sub, f'{key}.datasets[{i}]')
    else:
        yield ds_cfg, key


def update_inner_dataset_cfg(cfg: dict, **kwargs) -> dict:
    """Set ``kwargs`` on the innermost dataset config(s), in place.

    The wrappers keep only their own keys, so they keep the classes or
    images they select.

    Returns:
        dict: ``cfg``.
    """
    for leaf, _ in iter_dataset_cfgs(cfg, ''):
        leaf.update(kwargs)
    return cfg


def set_test_mode(cfg: dict) -> dict:
    """Set ``test_mode=True`` on the innermost dataset config(s), in place,
    and drop ``bbox_min_size`` from their ``filter_cfg``.

    mmdet's ``XMLDataset`` asserts ``not self.test_mode`` when
    ``filter_cfg`` has ``bbox_min_size`` (it marks small boxes ignored in
    training only): a training config switched to test mode would stop on
    a bare ``AssertionError``. The other ``filter_cfg`` keys are kept
    (``test_mode`` skips them).

    Args:
        cfg (dict): A dataset config, possibly wrapped.

    Returns:
        dict: ``cfg``.
    """
    for leaf, _ in iter_dataset_cfgs(cfg, ''):
        leaf['test_mode'] = True
        filter_cfg = leaf.get('filter_cfg')
        if isinstance(filter_cfg, dict) and 'bbox_min_size' in filter_cfg:
            leaf['filter_cfg'] = {k: v for k, v in filter_cfg.items()
                                  if k != 'bbox_min_size'}
    return cfg
