"""BalloonDataset: degenerate polygons and the real balloon counts."""
import json
import logging
import os.path as osp

import pytest
from PIL import Image

from rcnn_plugin.datasets import (
    BalloonDataset,
    VIADataset,
    class_instance_counts,
)
from rcnn_plugin.datasets.errors import AnnotationError

from conftest import REPO, logged_messages

BALLOON = osp.join(REPO, '..', 'shared', 'datasets', 'balloon')


def _poly(xs, ys):
    return dict(shape_attributes=dict(name='polygon', all_points_x=xs,
                                      all_points_y=ys),
                region_attributes={})


def test_degenerate_polygons_are_dropped_and_counted(tmp_path):
    Image.new('RGB', (40, 30)).save(tmp_path / 'a.jpg')
    regions = {
        '0': _poly([10, 30, 10], [5, 5, 25]),       # kept
        '1': _poly([1, 5], [1, 5]),                  # 2 points
        '2': _poly([1, 5, 9], [1, 5, 9]),            # collinear, 0 area
        '3': _poly([2, 2, 2, 2], [1, 8, 3, 1]),      # vertical line
    }
    data = {'a.jpg1': dict(filename='a.jpg', size=1, regions=regions,
                           file_attributes={})}
    (tmp_path / 'via.json').write_text(json.dumps(data))
    with logged_messages(logging.WARNING) as messages:
        ds = BalloonDataset(data_root=str(tmp_path), ann_file='via.json',
                            pipeline=[])
    ann = osp.join(str(tmp_path), 'via.json')
    assert ds.degenerate_polygons == {ann: 3}
    assert [i['mask'] for i in ds.get_data_info(0)['instances']] == [
        [[10, 5, 30, 5, 10, 25]]]
    text = '\n'.join(messages)
    assert "[regions]['1']: dropped a degenerate polygon with 2" in text
    assert 'dropped 3 degenerate polygon(s)' in text


def test_a_file_without_degenerate_polygons_counts_none(tmp_path):
    Image.new('RGB', (40, 30)).save(tmp_path / 'a.jpg')
    data = {'a': dict(filename='a.jpg', size=1, file_attributes={},
                      regions=[_poly([10, 30, 10], [5, 5, 25])])}
    (tmp_path / 'via.json').write_text(json.dumps(data))
    ds = BalloonDataset(data_root=str(tmp_path), ann_file='via.json',
                        pipeline=[])
    assert ds.degenerate_polygons == {} and len(ds) == 1


def test_via_dataset_drops_degenerate_polygons_only_when_asked(tmp_path):
    Image.new('RGB', (40, 30)).save(tmp_path / 'a.jpg')
    data = {'a': dict(filename='a.jpg', size=1, file_attributes={},
                      regions=[_poly([10, 30, 10], [5, 5, 25]),
                               _poly([1, 5], [1, 5])])}
    (tmp_path / 'via.json').write_text(json.dumps(data))
    kwargs = dict(data_root=str(tmp_path), ann_file='via.json', pipeline=[],
                  metainfo=dict(classes=('thing', )))
    with pytest.raises(AnnotationError, match=r"via.json.*\['a'\]\[regions"
                       r"\]\[1\].*at least 3 points"):
        VIADataset(**kwargs)
    ds = VIADataset(drop_degenerate=True, **kwargs)
    assert ds.degenerate_polygons == {osp.join(str(tmp_path), 'via.json'): 1}
    assert len(ds.get_data_info(0)['instances']) == 1
    with pytest.raises(AnnotationError, match='at least 3 points'):
        BalloonDataset(drop_degenerate=False, data_root=str(tmp_path),
                       ann_file='via.json', pipeline=[])


@pytest.mark.parametrize('split,images,polygons', [('train', 61, 255),
                                                   ('val', 13, 50)])
def test_real_balloon_counts(split, images, polygons):
    if not osp.isdir(osp.join(BALLOON, 'train')):
        pytest.skip(f'real balloon data not found at {osp.abspath(BALLOON)}'
                    ' (../shared/datasets/balloon is absent)')
    ds = BalloonDataset(
        data_root=BALLOON, ann_file=f'{split}/via_region_data.json',
        data_prefix=dict(img=f'{split}/'), pipeline=[])
    assert len(ds) == images
    assert class_instance_counts(ds) == {'balloon': polygons}
    assert ds.degenerate_polygons == {}
