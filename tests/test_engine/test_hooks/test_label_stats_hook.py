"""LabelStatsHook: labels.png from the training set's annotations."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from rcnn_plugin.datasets.stats import box_statistics
from rcnn_plugin.engine import LabelStatsHook
from rcnn_plugin.engine.hooks.label_stats_hook import plot_labels


class InfoDataset:
    """The part of mmengine's BaseDataset the statistics read."""

    def __init__(self, infos, classes=('cell', 'blob')):
        self.infos = infos
        self.metainfo = dict(classes=classes)

    def full_init(self):
        pass

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, idx):
        return self.infos[idx]


def _inst(box, label, ignore=0):
    return dict(bbox=box, bbox_label=label, ignore_flag=ignore)


INFOS = [
    dict(img_path='a.png', width=100, height=50, instances=[
        _inst([0, 0, 10, 20], 0), _inst([50, 25, 90, 45], 1),
        _inst([0, 0, 100, 50], 1, ignore=1)]),
    dict(img_path='b.png', width=200, height=100, instances=[]),
]


def test_box_statistics_values():
    stats = box_statistics(InfoDataset(INFOS))
    assert stats['labels'].tolist() == [0, 1]  # the ignored box is out
    assert stats['widths'].tolist() == [10, 40]
    assert stats['heights'].tolist() == [20, 20]
    assert stats['cx'].tolist() == [0.05, 0.7]
    assert stats['cy'].tolist() == [0.2, 0.7]
    no_size = [dict(img_path='c.png', instances=[_inst([0, 0, 4, 4], 0)])]
    stats = box_statistics(InfoDataset(no_size))
    assert math.isnan(stats['cx'][0]) and stats['widths'][0] == 4
    empty = box_statistics(InfoDataset([]))
    assert all(v.shape == (0,) for v in empty.values())


@pytest.mark.parametrize('infos', [
    INFOS,
    [dict(img_path='e.png', width=10, height=10, instances=[])],
    [dict(img_path='c.png', instances=[_inst([0, 0, 4, 8], 1)])],
], ids=['boxes', 'no-boxes', 'no-image-size'])
def test_labels_png_decodes(tmp_path, infos):
    path = plot_labels(InfoDataset(infos), str(tmp_path / 'labels.png'))
    with Image.open(path) as img:
        img.load()
        assert img.size == (1000, 800)
        pixels = np.asarray(img.convert('RGB'))
    assert pixels.std() > 5  # something is drawn


def test_hook_writes_into_the_work_dir(tmp_path):
    runner = SimpleNamespace(
        work_dir=str(tmp_path),
        train_dataloader=SimpleNamespace(dataset=SimpleNamespace(
            dataset=InfoDataset(INFOS))))  # a wrapper is unwrapped
    path = LabelStatsHook().before_train(runner)
    assert path == str(tmp_path / 'labels.png')
    with Image.open(path) as img:
        img.load()


def test_bad_arguments():
    with pytest.raises(ValueError, match='.png'):
        LabelStatsHook(filename='labels.jpg')
    with pytest.raises(ValueError, match='max_points'):
        LabelStatsHook(max_points=0)
    with pytest.raises(ValueError, match='label 5'):
        plot_labels(InfoDataset([dict(img_path='x.png', instances=[
            _inst([0, 0, 1, 1], 5)])]), 'unused.png')
