"""SeededSplitDataset: a seeded split written once, then read back."""
import json

import pytest
from PIL import Image

from rcnn_plugin.datasets import SeededSplitDataset


def _csv(root, n=10):
    (root / 'images').mkdir()
    rows = []
    for i in range(n):
        Image.new('RGB', (40, 40)).save(root / 'images' / f'{i}.png')
        rows.append(f'{i}.png,1,1,20,20,{"wbc" if i % 3 == 0 else "rbc"}')
    (root / 'boxes.csv').write_text('image,xmin,ymin,xmax,ymax,label\n'
                                    + '\n'.join(rows) + '\n')
    return dict(type='CSVDataset', data_root=str(root),
                ann_file='boxes.csv', data_prefix=dict(img='images'),
                pipeline=[])


def test_split_written_once_and_reproducible(tmp_path):
    cfg = _csv(tmp_path)
    split = tmp_path / 'split'
    train = SeededSplitDataset(cfg, str(split), part='train', seed=3)
    val = SeededSplitDataset(cfg, str(split), part='val', seed=3)
    names = lambda ds: {ds.get_data_info(i)['img_id']  # noqa: E731
                        for i in range(len(ds))}
    assert len(train) + len(val) == 10 and not names(train) & names(val)
    assert json.loads((split / 'split.json').read_text()) == dict(
        seed=3, fraction=0.3)
    other = tmp_path / 'again'
    again = SeededSplitDataset(cfg, str(other), part='val', seed=3)
    assert names(again) == names(val)
    assert (other / 'val.txt').read_text() == (split / 'val.txt').read_text()


def test_reused_folder_with_another_seed_is_an_error(tmp_path):
    cfg = _csv(tmp_path)
    SeededSplitDataset(cfg, str(tmp_path / 's'), seed=0)
    with pytest.raises(ValueError, match='records a split'):
        SeededSplitDataset(cfg, str(tmp_path / 's'), seed=1)


def test_bad_part(tmp_path):
    with pytest.raises(ValueError, match='part must be'):
        SeededSplitDataset(_csv(tmp_path), str(tmp_path / 's'), part='test')


def test_images_added_after_the_split_are_an_error(tmp_path):
    cfg = _csv(tmp_path)
    SeededSplitDataset(cfg, str(tmp_path / 's'), seed=0)
    Image.new('RGB', (40, 40)).save(tmp_path / 'images' / 'new.png')
    with open(tmp_path / 'boxes.csv', 'a') as f:
        f.write('new.png,1,1,20,20,rbc\n')
    with pytest.raises(ValueError, match=r'1 image\(s\) of the dataset are '
                       r'in neither part .*new\.png.*Delete the folder'):
        SeededSplitDataset(cfg, str(tmp_path / 's'), seed=0)
