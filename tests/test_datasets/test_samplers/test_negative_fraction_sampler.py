"""NegativeFractionSampler: per-batch fractions, 2 ranks, bad fractions."""
import math
from collections import Counter

import mmengine.dist
import pytest
from mmdet.registry import DATA_SAMPLERS

import rcnn_plugin  # noqa: F401
from rcnn_plugin.datasets import NegativeFractionSampler, negatives_per_batch
from rcnn_plugin.datasets.samplers import negative_fraction_sampler as nfs


class ToyDataset:
    """Images 0..num_pos-1 hold one box; the rest hold none."""

    def __init__(self, num_pos, num_neg):
        self.infos = [
            dict(instances=[dict(bbox=[0, 0, 1, 1], bbox_label=0,
                                 ignore_flag=0)]) for _ in range(num_pos)
        ] + [dict(instances=[]) for _ in range(num_neg)]
        self.num_pos = num_pos

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, idx):
        return self.infos[idx]


def _batches(sampler):
    inds = list(sampler)
    assert len(inds) == len(sampler)
    b = sampler.batch_size
    return [inds[i:i + b] for i in range(0, len(inds), b)]


def _negs(batch, ds):
    return sum(i >= ds.num_pos for i in batch)


def test_two_ranks_fraction_share_and_no_duplicates():
    """90% empty dataset, f = 0.25, B = 4: one negative in every batch."""
    ds = ToyDataset(num_pos=30, num_neg=270)
    ranks = [NegativeFractionSampler(ds, batch_size=4, neg_fraction=0.25,
                                     seed=3, rank=r, world_size=2)
             for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    per_rank = [_batches(s) for s in ranks]
    for batches in per_rank:
        assert all(_negs(b, ds) == 1 for b in batches)
    # 30 positives at 3 per batch -> 10 batches, 5 per rank.
    assert [len(b) for b in per_rank] == [5, 5]
    all_inds = [i for batches in per_rank for b in batches for i in b]
    assert len(all_inds) == len(set(all_inds))  # 40 <= 300: no padding
    assert {i for i in all_inds if i < 30} == set(range(30))


def test_fraction_not_a_multiple_of_one_over_batch():
    """f = 0.3, B = 4: 1.2 negatives per batch -> 1 or 2, total exact."""
    ds = ToyDataset(num_pos=100, num_neg=500)
    sampler = NegativeFractionSampler(ds, batch_size=4, neg_fraction=0.3,
                                      seed=0, rank=0, world_size=1)
    counts = [_negs(b, ds) for b in _batches(sampler)]
    assert set(counts) <= {1, 2}
    total = sum(counts)
    assert abs(total - 0.3 * 4 * len(counts)) < 1
    assert negatives_per_batch(0.3, 10, 3) == [3, 3, 3]
    assert negatives_per_batch(0.5, 3, 4) == [1, 2, 1, 2]


def test_padding_with_odd_batch_count_over_two_ranks():
    ds = ToyDataset(num_pos=7, num_neg=5)
    ranks = [NegativeFractionSampler(ds, batch_size=2, neg_fraction=0.5,
                                     seed=1, rank=r, world_size=2)
             for r in range(2)]
    inds = [i for s in ranks for i in s]
    # 7 positives at 1 per batch -> 7 batches -> 8 for 2 ranks: one
    # padded batch (a repeated positive and a repeated negative).
    assert len(inds) == 16
    assert {i for i in inds if i < 7} == set(range(7))
    dup = sum(c - 1 for c in Counter(inds).values())
    assert dup == 4  # 8 negatives drawn from 5, 8 positives from 7
    for s in ranks:
        assert all(_negs(b, ds) == 1 for b in _batches(s))


def test_deterministic_by_seed_and_epoch():
    ds = ToyDataset(num_pos=40, num_neg=60)

    def make(seed):
        return NegativeFractionSampler(ds, batch_size=4, neg_fraction=0.5,
                                       seed=seed, rank=0, world_size=1)

    a, b = make(5), make(5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(make(6)) != first


def test_rank_and_world_size_from_mmengine(monkeypatch):
    monkeypatch.setattr(nfs, 'get_dist_info', lambda: (1, 2))
    assert mmengine.dist.get_dist_info() == (0, 1)  # the real one untouched
    ds = ToyDataset(num_pos=12, num_neg=12)
    sampler = DATA_SAMPLERS.build(
        dict(type='NegativeFractionSampler', batch_size=2,
             neg_fraction=0.5),
        default_args=dict(dataset=ds, seed=0))
    assert (sampler.rank, sampler.world_size) == (1, 2)
    explicit = NegativeFractionSampler(ds, 2, 0.5, seed=0, rank=1,
                                       world_size=2)
    assert list(sampler) == list(explicit)


@pytest.mark.parametrize('f,expected_neg', [(0.0, 0), (1.0, 3)])
def test_extreme_fractions(f, expected_neg):
    ds = ToyDataset(num_pos=6, num_neg=9)
    sampler = NegativeFractionSampler(ds, batch_size=3, neg_fraction=f,
                                      seed=0, rank=0, world_size=1)
    batches = _batches(sampler)
    assert all(_negs(b, ds) == expected_neg for b in batches)
    # f = 0: 6 positives once; f = 1: 9 negatives once.
    assert len(batches) == (2 if f == 0 else 3)


@pytest.mark.parametrize('num_pos,num_neg,kwargs,match', [
    (5, 5, dict(neg_fraction=-0.1), r'in \[0, 1\]'),
    (5, 5, dict(neg_fraction=1.5), r'in \[0, 1\]'),
    (5, 5, dict(neg_fraction=math.nan), r'in \[0, 1\]'),
    (5, 0, dict(neg_fraction=0.25), 'filter_empty_gt=False'),
    (0, 5, dict(neg_fraction=0.25), 'positives are requested'),
    (5, 5, dict(neg_fraction=0.25, batch_size=0), 'batch_size'),
    (5, 5, dict(neg_fraction=0.25, rank=2, world_size=2), 'rank 2'),
])
def test_impossible_configs_raise(num_pos, num_neg, kwargs, match):
    kwargs = dict(dict(batch_size=2, seed=0, rank=0, world_size=1), **kwargs)
    with pytest.raises(ValueError, match=match):
        NegativeFractionSampler(ToyDataset(num_pos, num_neg), **kwargs)


WORKER = """
import json, sys
import torch.distributed as dist
dist.init_process_group('gloo', init_method='env://')
from rcnn_plugin.datasets import NegativeFractionSampler

class Toy:
    infos = [dict(instances=[dict(bbox_label=0)])] * 30 + [
        dict(instances=[])] * 270
    def __len__(self):
        return len(self.infos)
    def get_data_info(self, i):
        return self.infos[i]

# seed=None: rank 0 draws the seed and broadcasts it (sync_random_seed).
sampler = NegativeFractionSampler(Toy(), batch_size=4, neg_fraction=0.25)
sampler.set_epoch(1)
json.dump(dict(rank=sampler.rank, world=sampler.world_size,
               inds=list(sampler)), open(sys.argv[1], 'w'))
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_real_two_process_gloo_group(tmp_path):
    """Two processes, gloo: synced seed, disjoint shares, 1 negative each."""
    import json
    import os
    import socket
    import subprocess
    import sys

    from conftest import REPO
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = dict(os.environ, PYTHONPATH=REPO, RANK=str(rank),
                   WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
                   MASTER_PORT=str(port), OMP_NUM_THREADS='1')
        procs.append(subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f'{rank}.json')],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for p in procs:
        out = p.communicate(timeout=300)[0].decode()
        assert p.returncode == 0, out[-3000:]
    res = [json.load(open(tmp_path / f'{r}.json')) for r in range(2)]
    assert [(r['rank'], r['world']) for r in res] == [(0, 2), (1, 2)]
    a, b = res[0]['inds'], res[1]['inds']
    assert len(a) == len(b) == 20 and not set(a) & set(b)
    assert {i for i in a + b if i < 30} == set(range(30))
    for inds in (a, b):
        batches = [inds[i:i + 4] for i in range(0, 20, 4)]
        assert all(sum(i >= 30 for i in batch) == 1 for batch in batches)
