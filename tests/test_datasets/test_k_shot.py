"""KShotDataset / ClassSubsetDataset: exactness, seeds, split files."""
import json

import pytest
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules

import rcnn_plugin  # noqa: F401
from rcnn_plugin.datasets import (
    ClassSubsetDataset,
    KShotDataset,
    class_instance_counts,
    sample_k_shot,
)


def _inner(root, pipeline=()):
    return dict(type='SyntheticCellsDataset', data_root=root,
                ann_file='annotations/train.json', data_prefix=dict(img=''),
                pipeline=list(pipeline))


@pytest.fixture(scope='module')
def cells(synthetic_cells):
    """One built training set, shared (the wrappers copy its infos)."""
    return DATASETS.build(_inner(synthetic_cells))


def _picks(ds):
    """(img_id, annotated instance indices) of every image."""
    return [(info['img_id'],
             [j for j, inst in enumerate(info['instances'])
              if not inst['ignore_flag']]) for info in ds.data_list]


@pytest.mark.parametrize('shots', [1, 2, 5])
def test_exactly_k_per_class(cells, shots):
    # The tiny set has 20 rbc (up to 5 per image), 5 wbc, 13 platelets.
    for seed in range(3):
        ds = KShotDataset(cells, shots=shots, seed=seed)
        assert class_instance_counts(ds) == dict(
            rbc=shots, wbc=shots, platelet=shots)
        assert [sum(len(i) for _, i in _picks(ds))] == [3 * shots]
        assert len({img for img, _ in _picks(ds)}) == len(ds)


def test_deterministic_by_seed_and_seeds_differ(cells):
    a = KShotDataset(cells, shots=2, seed=7)
    b = KShotDataset(cells, shots=2, seed=7)
    assert _picks(a) == _picks(b)
    splits = [str(_picks(KShotDataset(cells, shots=2, seed=s)))
              for s in range(8, 12)]
    assert str(_picks(a)) not in splits[:1]
    assert len(set(splits)) == 4  # four seeds, four different splits


def test_split_file_written_and_read_back(cells, tmp_path):
    path = str(tmp_path / 'splits' / '3shot_seed1.json')
    a = KShotDataset(cells, shots=3, seed=1,
                     split_file=str(tmp_path / 'splits' /
                                    '{shots}shot_seed{seed}.json'))
    split = json.load(open(path))
    assert split['shots'] == 3 and split['seed'] == 1
    assert split['classes'] == ['rbc', 'wbc', 'platelet']
    for name, entries in split['images'].items():
        assert sum(len(e['instances']) for e in entries) == 3, name
    b = KShotDataset(cells, shots=3, seed=1,
                     split_file=path)
    assert _picks(a) == _picks(b)
    # A hand-edited file is honoured: it is the reproducible record.
    full = [b.source.get_data_info(k) for k in range(len(b.source))]
    wbc = [(info['img_id'], j) for info in full
           for j, inst in enumerate(info['instances'])
           if inst['bbox_label'] == 1]
    old = {e['img_id'] for e in split['images']['wbc']}
    new = [w for w in wbc if w[0] not in old] + [
        w for w in wbc if w[0] in old]
    split['images']['wbc'] = [dict(img_id=i, instances=[j])
                              for i, j in new[:3]]
    json.dump(split, open(path, 'w'))
    c = KShotDataset(cells, shots=3, seed=1,
                     split_file=path)
    assert class_instance_counts(c)['wbc'] == 3
    got = {info['img_id'] for info in c.data_list
           if any(inst['bbox_label'] == 1 and not inst['ignore_flag']
                  for inst in info['instances'])}
    assert got == {i for i, _ in new[:3]} != old
    with pytest.raises(ValueError, match='seed is 1'):
        KShotDataset(cells, shots=3, seed=2,
                     split_file=path)


def test_bad_split_entry_is_named(cells, tmp_path):
    path = tmp_path / 'split.json'
    KShotDataset(cells, shots=1, seed=0,
                 split_file=str(path))
    split = json.load(open(path))
    split['images']['rbc'][0]['img_id'] = 'nope'
    path.write_text(json.dumps(split))
    with pytest.raises(ValueError, match="'nope'"):
        KShotDataset(cells, shots=1, seed=0, split_file=str(path))
    split['images']['rbc'] = []
    path.write_text(json.dumps(split))
    with pytest.raises(ValueError, match="'rbc' has 0 instances"):
        KShotDataset(cells, shots=1, seed=0,
                     split_file=str(path))
    for text in ('{"shots": 1, "seed": 0, "clas', '[]', '{"shots": 1}'):
        path.write_text(text)  # cut mid-write, or not a split file
        with pytest.raises(ValueError, match=r'split\.json is not a K-shot '
                           'split file .*delete it to draw'):
            KShotDataset(cells, shots=1, seed=0, split_file=str(path))


def test_split_with_a_repeated_or_ignored_instance_is_refused(cells,
                                                              tmp_path):
    path = tmp_path / 'split.json'
    KShotDataset(cells, shots=2, seed=0, split_file=str(path))
    split = json.load(open(path))
    entry = dict(split['images']['rbc'][0])
    first = entry['instances'][0]
    split['images']['rbc'] = [dict(entry, instances=[first, first])]
    path.write_text(json.dumps(split))
    with pytest.raises(ValueError, match='repeats an instance'):
        KShotDataset(cells, shots=2, seed=0, split_file=str(path))
    split['images']['rbc'] = [dict(entry, instances=[first])] * 2
    path.write_text(json.dumps(split))
    with pytest.raises(ValueError, match='repeats an instance or the image'):
        KShotDataset(cells, shots=2, seed=0, split_file=str(path))


def test_k_larger_than_available_names_class_and_count(cells):
    with pytest.raises(ValueError, match="'wbc' has 5"):
        KShotDataset(cells, shots=6)
    with pytest.raises(ValueError, match='positive'):
        KShotDataset(cells, shots=0)


def test_dense_class_gets_a_subset_of_one_image():
    infos = [dict(img_id=i, instances=[
        dict(bbox_label=0, ignore_flag=0) for _ in range(5)])
        for i in range(4)]
    sel = sample_k_shot(infos, ['cell'], shots=3, seed=0)
    assert len(sel[0]) == 1
    assert len(next(iter(sel[0].values()))) == 3
    sel7 = sample_k_shot(infos, ['cell'], shots=7, seed=0)
    assert sorted(len(v) for v in sel7[0].values()) == [2, 5]


def test_images_without_annotations_are_never_picked():
    infos = [dict(img_id=i, instances=[] if i % 2 else [
        dict(bbox_label=i // 2 % 2, ignore_flag=0)]) for i in range(12)]
    for seed in range(5):
        sel = sample_k_shot(infos, ['a', 'b'], shots=2, seed=seed)
        picked = {pos for per_image in sel.values() for pos in per_image}
        assert all(pos % 2 == 0 for pos in picked)  # the annotated ones
        assert [sum(map(len, sel[c].values())) for c in (0, 1)] == [2, 2]
    with pytest.raises(ValueError, match="'b' has 0"):
        sample_k_shot([dict(img_id=0, instances=[])] * 3 + infos[:1],
                      ['a', 'b'], shots=1, seed=0)


def test_class_subset_relabels_and_ignores_others(cells):
    ds = ClassSubsetDataset(cells,
                            classes=('platelet', 'wbc'))
    assert ds.metainfo['classes'] == ('platelet', 'wbc')
    assert class_instance_counts(ds) == dict(platelet=13, wbc=5)
    assert len(ds) == 8  # images with only rbc are kept as negatives
    labels = {(inst['bbox_label'], inst['ignore_flag'])
              for i in range(len(ds))
              for inst in ds.get_data_info(i)['instances']}
    assert labels == {(0, 0), (1, 0), (-1, 1)}
    with pytest.raises(ValueError, match='unknown'):
        ClassSubsetDataset(cells, classes=('RBC', ))


def test_pipeline_and_class_balanced_wrapper(synthetic_cells):
    register_all_modules()  # ClassBalancedDataset builds in scope mmdet
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True),
                dict(type='PackDetInputs')]
    ds = DATASETS.build(dict(
        type='ClassBalancedDataset', oversample_thr=0.5,
        dataset=dict(type='KShotDataset', shots=2, seed=0, classes=('wbc', ),
                     dataset=_inner(synthetic_cells, pipeline))))
    assert ds.metainfo['classes'] == ('wbc', )
    item = ds[0]
    gt = item['data_samples'].gt_instances
    assert set(gt.labels.tolist()) <= {0}
    assert len(gt) + len(item['data_samples'].ignored_instances) >= 1
    total = sum(len(ds[i]['data_samples'].gt_instances)
                for i in range(len(ds.dataset)))
    assert total == 2


@pytest.mark.slow
def test_bccd_configs_data(tmp_path):
    """The few-shot configs' datasets on the real BCCD training split."""
    import os.path as osp

    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from conftest import REPO, bccd_or_skip
    root = bccd_or_skip() + '/'
    init_default_scope('mmdet')
    cfgs = osp.join(REPO, 'configs', 'bccd_fewshot',
                    'faster-rcnn_mobilenetv2_fpn-128_{}_bccd.py')
    base = Config.fromfile(cfgs.format('base-training')).train_dataloader
    base.dataset.dataset.data_root = root
    base_ds = DATASETS.build(base.dataset)
    counts = class_instance_counts(base_ds)
    assert list(counts) == ['RBC'] and counts['RBC'] > 2300
    fine = Config.fromfile(cfgs.format('cos_fine-tuning_10shot'))
    fine = fine.train_dataloader.dataset
    fine.dataset.data_root = root
    fine.split_file = str(tmp_path / '{shots}shot_seed{seed}.json')
    ds = DATASETS.build(fine)
    assert class_instance_counts(ds) == dict(RBC=10, WBC=10, Platelets=10)
    split = json.load(open(tmp_path / '10shot_seed0.json'))
    for name, entries in split['images'].items():
        assert sum(len(e['instances']) for e in entries) == 10, name
    # ~12 RBC per smear: with seed 0, RBC's 10 are part of a single image.
    assert len(split['images']['RBC']) == 1


def test_class_subset_draws_another_image_when_the_pipeline_gives_none(
        cells, monkeypatch):
    # mmdet's RandomCrop (no negative crop) or FilterAnnotations return
    # None; the wrapper handed it on to the collate function.
    ds = ClassSubsetDataset(cells, classes=('wbc', ))
    first = ds.data_list[0]['img_path']
    monkeypatch.setattr(cells, 'pipeline', lambda info: None
                        if info['img_path'] == first else info['img_path'])
    assert ds[0] not in (None, first)
    monkeypatch.setattr(cells, 'pipeline', lambda info: None)
    with pytest.raises(RuntimeError, match='pipeline returned None'):
        ds[0]
