"""stratified_split: seeded, class-stratified train / val image lists."""
import pytest
from mmdet.registry import DATASETS
from PIL import Image

from rcnn_plugin.datasets import stratified_split


def _dataset(root, labels):
    """A CSV dataset: image i holds one box per class name in labels[i]."""
    (root / 'images').mkdir(parents=True)
    rows = []
    for i, names in enumerate(labels):
        Image.new('RGB', (20, 20)).save(root / 'images' / f'{i:02d}.png')
        rows += [f'{i:02d}.png,1,1,9,9,{n}' for n in names] or [
            f'{i:02d}.png,,,,,']
    (root / 'boxes.csv').write_text('image,xmin,ymin,xmax,ymax,label\n' +
                                    '\n'.join(rows) + '\n')
    return dict(type='CSVDataset', data_root=str(root), ann_file='boxes.csv',
                data_prefix=dict(img='images'), pipeline=[],
                metainfo=dict(classes=('common', 'rare', 'solo')))


LABELS = [['common']] * 12 + [['common', 'rare']] * 2 + [['rare']] + \
    [['solo']] + [[]] * 4


def _lines(path):
    return open(path).read().splitlines()


def test_split_is_stratified_sorted_and_complete(tmp_path):
    cfg = _dataset(tmp_path / 'data', LABELS)
    train_cfg, val_cfg = stratified_split(cfg, 0.25, 0, str(tmp_path / 's'))
    train, val = _lines(tmp_path / 's' / 'train.txt'), _lines(
        tmp_path / 's' / 'val.txt')
    assert train == sorted(train) and val == sorted(val)
    assert not set(train) & set(val)
    assert len(train) + len(val) == len(LABELS)
    assert all(p.startswith('images/') for p in train + val)
    idx = {p: int(p[7:9]) for p in train + val}
    for name in ('common', 'rare'):  # 2+ images: in both splits
        assert any(name in LABELS[idx[p]] for p in val), name
        assert any(name in LABELS[idx[p]] for p in train), name
    assert any('solo' in LABELS[idx[p]] for p in train)  # its only image
    assert any(not LABELS[idx[p]] for p in val)  # negatives are a group
    assert 3 <= len(val) <= 7
    train_ds, val_ds = DATASETS.build(train_cfg), DATASETS.build(val_cfg)
    assert (len(train_ds), len(val_ds)) == (len(train), len(val))
    assert val_ds.test_mode and not train_ds.test_mode
    assert train_cfg['dataset'] == cfg  # the original config, wrapped


def test_same_seed_same_files_other_seeds_differ(tmp_path):
    cfg = _dataset(tmp_path / 'data', LABELS)
    vals = []
    for run, seed in enumerate((0, 0, 1, 2, 3)):
        out = tmp_path / f'run{run}'
        stratified_split(cfg, 0.3, seed, str(out))
        vals.append(_lines(out / 'val.txt'))
    assert vals[0] == vals[1]
    assert any(v != vals[0] for v in vals[2:])


def test_tiny_and_bad_inputs(tmp_path):
    cfg = _dataset(tmp_path / 'one', [['common']])
    cfg['metainfo'] = dict(classes=('common', ))
    with pytest.raises(ValueError, match=r'cannot split 1 image\(s\)'):
        stratified_split(cfg, 0.2, 0, str(tmp_path / 's'))
    for fraction in (0, 1, 1.5):
        with pytest.raises(ValueError, match='val_fraction must be in'):
            stratified_split(cfg, fraction, 0, str(tmp_path / 's'))
    cfg = _dataset(tmp_path / 'two', [['solo'], ['rare']])
    cfg['metainfo'] = dict(classes=('solo', 'rare'))
    stratified_split(cfg, 0.1, 0, str(tmp_path / 'two_out'))
    assert len(_lines(tmp_path / 'two_out' / 'val.txt')) == 1  # never empty
    cfg = _dataset(tmp_path / 'neg', [[], []])
    cfg.update(metainfo=dict(classes=('x', )), check_classes='off')
    stratified_split(cfg, 0.5, 0, str(tmp_path / 'neg_out'))
    assert len(_lines(tmp_path / 'neg_out' / 'train.txt')) == 1


def test_val_config_of_voc_with_bbox_min_size_builds(tmp_path):
    # the val config (test_mode=True) kept filter_cfg's bbox_min_size, on
    # which mmdet's XMLDataset asserts not test_mode: a bare AssertionError
    root = tmp_path / 'voc'
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True)
    for i in range(4):
        Image.new('RGB', (60, 40)).save(root / 'JPEGImages' / f'{i}.jpg')
        (root / 'Annotations' / f'{i}.xml').write_text(
            '<annotation><size><width>60</width><height>40</height></size>'
            '<object><name>cell</name><bndbox><xmin>1</xmin><ymin>1</ymin>'
            '<xmax>50</xmax><ymax>38</ymax></bndbox></object></annotation>')
    (root / 'ImageSets/Main/all.txt').write_text('0\n1\n2\n3\n')
    filter_cfg = dict(filter_empty_gt=True, min_size=32, bbox_min_size=32)
    cfg = dict(type='StrictXMLDataset', data_root=str(root), pipeline=[],
               ann_file='ImageSets/Main/all.txt', filter_cfg=filter_cfg,
               data_prefix=dict(sub_data_root=''),
               metainfo=dict(classes=('cell', )))
    train_cfg, val_cfg = stratified_split(cfg, 0.25, 0, str(tmp_path / 's'))
    val_ds = DATASETS.build(val_cfg)
    assert val_ds.test_mode and len(val_ds) == 1
    assert train_cfg['dataset']['filter_cfg'] == filter_cfg  # kept
    assert len(DATASETS.build(train_cfg)) == 3
