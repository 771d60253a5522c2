import pickle

import numpy as np
import pytest
from mmengine.structures import InstanceData

from rcnn_plugin.datasets import (
    ProposalFileError,
    SyntheticCellsDataset,
    match_proposals,
    proposal_key,
)


def _entry(n):
    return InstanceData(
        bboxes=np.tile(np.array([[1, 2, 30, 40]], np.float32), (n, 1)),
        scores=np.linspace(1, 0, n, dtype=np.float32))


def test_proposal_key_is_parent_folder_and_name():
    assert proposal_key('/d/bccd/JPEGImages/a.jpg') == 'JPEGImages/a.jpg'
    assert proposal_key('x.jpg') == 'x.jpg'


def test_match_attaches_each_entry():
    data = [{'img_path': '/r/img/a.jpg'}, {'img_path': '/r/img/b.jpg'}]
    props = {'img/b.jpg': _entry(0), 'img/a.jpg': _entry(3)}
    match_proposals(data, props, 'p.pkl')
    assert len(data[0]['proposals'].bboxes) == 3
    assert len(data[1]['proposals'].bboxes) == 0


def test_missing_image_names_first_one():
    data = [{'img_path': f'/r/img/{c}.jpg'} for c in 'abc']
    props = {'img/a.jpg': _entry(1), 'img/other.jpg': _entry(1),
             'img/c.jpg': _entry(1)}
    with pytest.raises(ProposalFileError,
                       match=r"p.pkl has 3 entries for 3 images; first image "
                             r"without proposals: /r/img/b.jpg"):
        match_proposals(data, props, 'p.pkl')


def test_extra_entry_names_first_extra_key():
    data = [{'img_path': '/r/img/a.jpg'}]
    props = {'img/a.jpg': _entry(1), 'val/z.jpg': _entry(1),
             'val/y.jpg': _entry(1)}
    with pytest.raises(ProposalFileError,
                       match=r"3 entries for 1 images; first key that "
                             r"matches no image: 'val/z.jpg'"):
        match_proposals(data, props, 'p.pkl')


def test_images_sharing_a_key_are_refused():
    data = [{'img_path': '/r/a/img/x.jpg'}, {'img_path': '/r/b/img/x.jpg'}]
    with pytest.raises(ProposalFileError, match='share the proposal key'):
        match_proposals(data, {'img/x.jpg': _entry(1)}, 'p.pkl')


@pytest.mark.parametrize('entry, message', [
    ({'bboxes': np.zeros((2, 5))}, r'\(R, 4\) boxes, got shape \(2, 5\)'),
    ({'boxes': np.zeros((2, 4))}, 'no "bboxes"'),
    ({'bboxes': np.zeros((2, 4)), 'scores': np.zeros(3)},
     '2 boxes but 3 scores'),
])
def test_bad_entry_names_the_key(entry, message):
    data = [{'img_path': '/r/img/a.jpg'}]
    with pytest.raises(ProposalFileError, match=message) as err:
        match_proposals(data, {'img/a.jpg': entry}, 'p.pkl')
    assert "'img/a.jpg'" in str(err.value)


def test_not_a_dict_is_refused():
    with pytest.raises(ProposalFileError, match='got list'):
        match_proposals([], [], 'p.pkl')


def _dataset(root, proposal_file):
    return SyntheticCellsDataset(
        data_root=root, ann_file='annotations/val.json',
        data_prefix=dict(img=''), proposal_file=proposal_file,
        test_mode=True, pipeline=[])


def test_dataset_loads_matching_file(synthetic_cells, tmp_path):
    keys = [proposal_key(d['img_path'])
            for d in _dataset(synthetic_cells, None).load_data_list()]
    path = tmp_path / 'val.pkl'
    path.write_bytes(pickle.dumps({k: _entry(i) for i, k in enumerate(keys)}))
    ds = _dataset(synthetic_cells, str(path))
    assert [len(ds.get_data_info(i)['proposals'].bboxes)
            for i in range(len(ds))] == list(range(len(keys)))


def test_dataset_refuses_file_of_another_split(synthetic_cells, tmp_path):
    data = _dataset(synthetic_cells, None).load_data_list()
    keys = [proposal_key(d['img_path']) for d in data]
    path = tmp_path / 'val.pkl'
    path.write_bytes(pickle.dumps({k: _entry(1) for k in keys[1:]}))
    with pytest.raises(ProposalFileError,
                       match=f'first image without proposals: '
                             f'{data[0]["img_path"]}'):
        _dataset(synthetic_cells, str(path))


def test_dataset_missing_file_is_named(synthetic_cells):
    with pytest.raises(FileNotFoundError,
                       match='synthetic_cells.*/nowhere/val.pkl'):
        _dataset(synthetic_cells, 'nowhere/val.pkl')


def test_native_datasets_check_proposal_files_too(tmp_path):
    import json

    from PIL import Image

    from rcnn_plugin.datasets import VIADataset
    regions = [dict(shape_attributes=dict(name='rect', x=2, y=3, width=9,
                                          height=7), region_attributes={})]
    data = {}
    for name in ('a.jpg', 'b.jpg'):
        Image.new('RGB', (40, 30)).save(tmp_path / name)
        data[name] = dict(filename=name, size=1, regions=regions,
                          file_attributes={})
    (tmp_path / 'via.json').write_text(json.dumps(data))
    folder = tmp_path.name

    def build(entries):
        (tmp_path / 'p.pkl').write_bytes(pickle.dumps(entries))
        return VIADataset(data_root=str(tmp_path), ann_file='via.json',
                          proposal_file='p.pkl', pipeline=[],
                          metainfo=dict(classes=('thing', )))

    ds = build({f'{folder}/a.jpg': _entry(2), f'{folder}/b.jpg': _entry(3)})
    assert [len(ds.get_data_info(i)['proposals'].bboxes)
            for i in range(2)] == [2, 3]
    with pytest.raises(ProposalFileError, match=r'first image without '
                       r'proposals: .*b\.jpg'):
        build({f'{folder}/a.jpg': _entry(2)})
