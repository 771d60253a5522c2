"""Check the training sampler against the dataloader around it.

A sampler that lays out whole batches (``NegativeFractionSampler``: a set
fraction of object-free images in every batch) keeps its promise only when
the dataloader cuts its stream into batches of the same size, in order. The
runner never passes ``batch_size`` to a sampler, and mmdet's dataset bases
add ``AspectRatioBatchSampler``, which regroups the stream by aspect ratio.
Either slip trains without an error on batches the sampler never made.
"""
import inspect
from typing import Any, List, Optional

from .context import DoctorContext
from .finding import Finding

__all__ = ['accepts', 'check_sampler', 'sampler_class']


def accepts(cls: Any, *names: str) -> bool:
    """Whether ``cls(...)`` takes every keyword in ``names``."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False
    return all(n in params for n in names)


def sampler_class(cfg: dict) -> Optional[type]:
    """The class a sampler config builds (mmdet's ``DATA_SAMPLERS`` and its
    parents), or None when the type is unknown."""
    from mmdet.registry import DATA_SAMPLERS
    kind = cfg.get('type')
    return DATA_SAMPLERS.get(kind) if isinstance(kind, str) else kind


def _aspect_groups(ctx: DoctorContext) -> Optional[dict]:
    """Training images per ``AspectRatioBatchSampler`` group (tall: w < h,
    wide: w >= h); None when the training set is not available."""
    try:
        dataset = ctx.dataset('train')
    except Exception:  # noqa: BLE001 - the data checks report it
        return None
    if dataset is None:
        return None
    groups = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        group = 'tall' if info['width'] < info['height'] else 'wide'
        groups[group] = groups.get(group, 0) + 1
    return groups


def check_sampler(ctx: DoctorContext) -> List[Finding]:
    """Check a batch-laying sampler (one that takes ``batch_size``) against
    the dataloader's batch size and batch sampler.

    Args:
        ctx (DoctorContext): The config; the training set, when available,
            tells whether an aspect-ratio batch sampler regroups anything.

    Returns:
        list[Finding]: An error when the sampler's ``batch_size`` is not the
        dataloader's; a warning when a batch sampler regroups its stream
        (none when every training image falls in one aspect-ratio group).
    """
    loader = ctx.cfg.get('train_dataloader') or {}
    cfg = loader.get('sampler')
    if not isinstance(cfg, dict) or 'batch_size' not in loader:
        return []
    cls = sampler_class(cfg)
    if cls is None or not accepts(cls, 'batch_size'):
        return []
    name, batch = cls.__name__, loader['batch_size']
    findings = []
    laid = cfg.get('batch_size')
    if laid != batch:
        what = ('has no batch_size, so it does not build' if laid is None
                else f'lays out batches of {laid} but '
                f'train_dataloader.batch_size is {batch}: the loader cuts '
                'its stream at other places, so no batch is one the sampler '
                'made')
        findings.append(Finding(
            'sampler', 'error',
            f'train_dataloader.sampler ({name}) {what} (the runner does not '
            'pass the batch size to samplers)',
            f'set train_dataloader.sampler.batch_size={batch}',
            'train_dataloader.sampler.batch_size'))
    batch_cfg = loader.get('batch_sampler')
    if not isinstance(batch_cfg, dict):
        return findings
    from mmdet.datasets.samplers import AspectRatioBatchSampler
    batch_cls = sampler_class(batch_cfg)
    kind = getattr(batch_cls, '__name__', str(batch_cfg.get('type')))
    by_aspect = isinstance(batch_cls, type) and issubclass(
        batch_cls, AspectRatioBatchSampler)
    groups = _aspect_groups(ctx) if by_aspect else None
    if groups is not None and len(groups) <= 1:
        return findings
    if groups is None:
        seen = ('it regroups the stream by aspect ratio' if by_aspect else
                'it makes its own batches from the stream')
    else:
        seen = (f'the training set has {groups["tall"]} tall (w < h) and '
                f'{groups["wide"]} wide images, which it batches apart')
    findings.append(Finding(
        'sampler', 'warning',
        f'train_dataloader.batch_sampler ({kind}) re-batches the stream of '
        f'train_dataloader.sampler ({name}): {seen}, so the batches are not '
        'the ones the sampler laid out',
        'set train_dataloader.batch_sampler=None (mmdet\'s dataset bases '
        'set AspectRatioBatchSampler)', 'train_dataloader.batch_sampler'))
    return findings
