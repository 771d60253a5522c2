"""Data sampler that fixes the share of object-free images per batch.

Notation: ``B`` images per batch on one rank, ``W`` ranks, ``f`` the wanted
fraction of negative (object-free) images, ``P`` / ``N`` positive /
negative images in the dataset.
"""
import math
from typing import Iterator, List, Optional, Sized

import torch
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler


def is_negative_image(data_info: dict) -> bool:
    """True when an image holds no non-ignored instance.

    Args:
        data_info (dict): An mmdet data info with ``instances``.

    Returns:
        bool: Whether the image is object-free.
    """
    return not any(not inst.get('ignore_flag', 0)
                   for inst in data_info.get('instances', []))


def negatives_per_batch(neg_fraction: float, batch_size: int,
                        num_batches: int) -> List[int]:
    """Negatives in each of ``num_batches`` consecutive batches.

    Batch ``i`` holds ``floor(f*B*(i+1)) - floor(f*B*i)`` negatives: the
    count per batch is ``floor(f*B)`` or ``ceil(f*B)`` and the running total
    never drifts more than one image from ``f`` times the images seen.

    Args:
        neg_fraction (float): ``f`` in ``[0, 1]``.
        batch_size (int): ``B``.
        num_batches (int): Number of batches.

    Returns:
        list[int]: Negatives per batch.
    """
    per = neg_fraction * batch_size
    # The small epsilon keeps e.g. 0.3 * 10 from flooring to 2.
    cum = [math.floor(per * i + 1e-9) for i in range(num_batches + 1)]
    return [b - a for a, b in zip(cum, cum[1:])]


@DATA_SAMPLERS.register_module()
class NegativeFractionSampler(Sampler):
    """Batches with a set fraction of object-free images, DDP-aware.

    An epoch sees every positive image once (the last batches are padded
    with repeats, as mmengine's ``DefaultSampler`` pads). Negatives fill
    ``f`` of every batch; they are drawn from a shuffled list of all
    negatives, so each one is used at most once per epoch while there are
    enough of them, and a different subset is seen in every epoch; when
    ``f`` needs more negatives than exist, the list is cycled (scarce
    negatives are oversampled). With ``f = 1`` an epoch is one pass over
    the negatives. The order depends on ``seed + epoch`` only.

    Under DDP the epoch is a sequence of global steps of ``W`` batches of
    ``B``; rank ``r`` takes batch ``r`` of every step, so every rank's
    batches hold the fraction and ranks never share an index within an
    epoch beyond the padding. ``batch_size`` must equal the dataloader's
    (per-rank) ``batch_size``: the runner does not pass it to samplers.
    Set ``batch_sampler=None``: mmdet's ``AspectRatioBatchSampler`` regroups
    a stream of tall and wide images and so breaks the fraction (the config
    doctor's ``sampler`` check reports both).

    Args:
        dataset (Sized): Dataset with ``get_data_info(i)`` returning mmdet
            data infos. Build it with ``filter_cfg=dict(
            filter_empty_gt=False)``, or it has no negatives.
        batch_size (int): ``B``, the dataloader's batch size.
        neg_fraction (float): ``f`` in ``[0, 1]``. Defaults to 0.25.
        shuffle (bool): Shuffle positives and negatives. Defaults to True.
        seed (int, optional): Same on all ranks; None draws one and syncs it
            across ranks, as ``DefaultSampler``. Defaults to None.
        rank (int, optional): This process's rank; None asks
            ``mmengine.dist.get_dist_info``. Defaults to None.
        world_size (int, optional): ``W``; None asks ``get_dist_info``.
            Defaults to None.
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int,
                 neg_fraction: float = 0.25,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        dist_rank, dist_world = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'NegativeFractionSampler: batch_size must be '
                             f'a positive int, got {batch_size!r}')
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'NegativeFractionSampler: rank {self.rank} is '
                             f'not in [0, world_size={self.world_size})')
        self.dataset = dataset
        self.batch_size = batch_size
        self.neg_fraction = float(neg_fraction)
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        flags = [is_negative_image(dataset.get_data_info(i))
                 for i in range(len(dataset))]
        self.neg_inds = [i for i, neg in enumerate(flags) if neg]
        self.pos_inds = [i for i, neg in enumerate(flags) if not neg]
        self._check_fraction()
        self.num_batches = self._count_batches()

    def _check_fraction(self) -> None:
        f, num_pos, num_neg = (self.neg_fraction, len(self.pos_inds),
                               len(self.neg_inds))
        where = (f'NegativeFractionSampler(neg_fraction={f}) on a dataset '
                 f'of {num_pos} images with objects and {num_neg} without')
        if not (math.isfinite(f) and 0.0 <= f <= 1.0):
            raise ValueError(f'{where}: neg_fraction must be in [0, 1]')
        if f > 0 and num_neg == 0:
            raise ValueError(
                f'{where}: negatives are requested but there are none; '
                'build the dataset with filter_cfg=dict('
                'filter_empty_gt=False) or set neg_fraction=0')
        if f < 1 and num_pos == 0:
            raise ValueError(f'{where}: positives are requested but the '
                             'dataset has none')

    def _count_batches(self) -> int:
        """Fewest batches (a multiple of W) that hold every image once."""
        step, f, b = self.world_size, self.neg_fraction, self.batch_size
        if f == 1.0:
            need = math.ceil(len(self.neg_inds) / b)
            return math.ceil(need / step) * step
        # Positives per batch average B(1-f) > 0: start from that guess.
        n = max(step, math.ceil(len(self.pos_inds) / (b * (1 - f))))
        n = math.ceil(n / step) * step
        while sum(b - k for k in negatives_per_batch(f, b, n)) < len(
                self.pos_inds):
            n += step
        return n

    def _order(self, inds: List[int], gen: torch.Generator) -> List[int]:
        if not self.shuffle:
            return list(inds)
        return [inds[i] for i in torch.randperm(len(inds), generator=gen)]

    def _batches(self) -> List[List[int]]:
        """All ``num_batches`` batches of this epoch, for all ranks."""
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        pos, neg = self._order(self.pos_inds, gen), self._order(
            self.neg_inds, gen)
        batches, used_pos, used_neg = [], 0, 0
        b = self.batch_size
        for k in negatives_per_batch(self.neg_fraction, b, self.num_batches):
            batch = [neg[(used_neg + j) % len(neg)] for j in range(k)]
            batch += [pos[(used_pos + j) % len(pos)] for j in range(b - k)]
            used_neg, used_pos = used_neg + k, used_pos + b - k
            batches.append(self._order(batch, gen))
        return batches

    def __iter__(self) -> Iterator[int]:
        """Indices of this rank's batches, batch after batch."""
        mine = self._batches()[self.rank::self.world_size]
        return iter([i for batch in mine for i in batch])

    def __len__(self) -> int:
        """Images this rank yields per epoch."""
        return self.num_batches // self.world_size * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (mmengine's ``DistSamplerSeedHook`` calls it).

        Args:
            epoch (int): Epoch number.
        """
        self.epoch = epoch
