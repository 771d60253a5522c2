"""ABR box replay: the memory, the BoxReplay transform and the hook."""
import json
import logging
import os.path as osp
import re
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
from mmdet.datasets.transforms import LoadAnnotations
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.dataset import BaseDataset
from mmengine.hooks import CheckpointHook

from projects.IncrementalDet.incremental_det import NewClassDataset
from projects.IncrementalDet.incremental_det.replay_hook import (
    ReplayMemoryHook,
)
from projects.IncrementalDet.incremental_det.replay_memory import (
    build_replay_memory,
    load_replay_memory,
    select_per_class,
)
from projects.IncrementalDet.incremental_det.replay_transform import (
    BoxReplay,
    _covered,
)

CLASSES = ('RBC', 'WBC', 'Platelets')


class _Smears(BaseDataset):
    """Noise images on disk, each with boxes given as (label, x1, y1)."""
    METAINFO = dict(classes=CLASSES)

    def __init__(self, images, **kwargs):
        self.images = images
        super().__init__(**kwargs)

    def load_data_list(self):
        return [dict(img_path=path, img_id=i, instances=[
            dict(bbox=[x, y, x + 12, y + 10], bbox_label=label,
                 ignore_flag=0) for label, x, y in boxes])
            for i, (path, boxes) in enumerate(self.images)]


def _images(tmp_path, boxes_per_image):
    rng = np.random.RandomState(0)
    out = []
    for i, boxes in enumerate(boxes_per_image):
        path = str(tmp_path / f'img{i}.png')
        mmcv.imwrite(rng.randint(0, 256, (64, 80, 3), dtype=np.uint8), path)
        out.append((path, boxes))
    return out


@pytest.fixture
def smears(tmp_path):
    # 6 RBC, 3 WBC, 1 platelet over 3 images
    return _Smears(_images(tmp_path, [
        [(0, 2, 2), (0, 30, 4), (1, 50, 30), (2, 10, 40)],
        [(0, 5, 5), (0, 40, 20), (1, 20, 30)],
        [(0, 60, 50), (0, 20, 10), (1, 3, 45)]]))


@pytest.fixture
def memory_dir(tmp_path, smears):
    out = str(tmp_path / 'memory')
    build_replay_memory(smears, out, budget=2, margin=0.25, seed=0)
    return out


def test_select_per_class_respects_budget_and_seed():
    labels = [0] * 10 + [1] * 3 + [2]
    keep = select_per_class(labels, 3, budget=4, seed=0)
    assert [sum(labels[i] == c for i in keep) for c in range(3)] == [4, 3, 1]
    assert keep == select_per_class(labels, 3, budget=4, seed=0)
    assert keep != select_per_class(labels, 3, budget=4, seed=1)
    with pytest.raises(ValueError, match='budget'):
        select_per_class(labels, 3, budget=-1, seed=0)


def test_memory_budget_and_index_round_trip(memory_dir, smears):
    memory = load_replay_memory(memory_dir, CLASSES)
    assert memory.counts() == {'RBC': 2, 'WBC': 2, 'Platelets': 1}
    index = json.load(open(osp.join(memory_dir, 'index.json')))
    assert index['classes'] == list(CLASSES)
    assert (index['budget'], index['seed'], index['margin']) == (2, 0, 0.25)
    assert index['crops'] == memory.crops and len(memory) == 5
    for i, crop in enumerate(memory.crops):
        assert crop['class'] == CLASSES[crop['label']]
        # the crop is the source box with its margin (3 px, 2.5 px each side)
        src = mmcv.imread(crop['source'])
        x1, y1 = crop['box'][:2]
        img = memory.read(i)
        ix1, iy1, ix2, iy2 = crop['box_in_crop']
        assert 0 <= ix1 < ix2 <= img.shape[1]
        assert 0 <= iy1 < iy2 <= img.shape[0]
        assert ix2 - ix1 == 12 and iy2 - iy1 == 10
        cx, cy = int(x1 - ix1), int(y1 - iy1)
        np.testing.assert_array_equal(
            img, src[cy:cy + img.shape[0], cx:cx + img.shape[1]])
    # the same seed selects the same boxes
    again = build_replay_memory(smears, memory_dir + '2', budget=2,
                                margin=0.25, seed=0)
    assert [c['box'] for c in again.crops] == [c['box'] for c in
                                               memory.crops]


def test_memory_for_other_classes_is_refused_naming_the_file(memory_dir):
    index = osp.join(memory_dir, 'index.json')
    for wrong in [('WBC', ), ('WBC', 'RBC', 'Platelets')]:
        with pytest.raises(ValueError) as err:
            load_replay_memory(memory_dir, wrong)
        msg = str(err.value)
        assert index in msg and str(list(CLASSES)) in msg
        assert str(list(wrong)) in msg
        with pytest.raises(ValueError, match='written for the classes'):
            BoxReplay(memory_dir, old_classes=wrong)
    missing = osp.join(memory_dir, 'nowhere')
    with pytest.raises(FileNotFoundError,
                       match=re.escape(osp.join(missing, 'index.json'))):
        BoxReplay(missing, old_classes=CLASSES)
    with open(osp.join(memory_dir, 'bad.json'), 'w') as f:
        json.dump(dict(classes=['RBC']), f)
    with pytest.raises(ValueError, match='bad.json is not a box-replay'):
        load_replay_memory(osp.join(memory_dir, 'bad.json'))


def _loaded(boxes, labels, shape=(64, 80)):
    """A sample as LoadAnnotations leaves it (mmdet's own transform)."""
    rng = np.random.RandomState(1)
    results = dict(img=rng.randint(0, 256, (*shape, 3), dtype=np.uint8),
                   img_shape=shape, instances=[
                       dict(bbox=b, bbox_label=lab, ignore_flag=0)
                       for b, lab in zip(boxes, labels)])
    return LoadAnnotations(with_bbox=True)(results)


@pytest.mark.parametrize('mode', ['paste', 'mixup'])
def test_replay_adds_old_class_boxes_inside_the_image(memory_dir, mode):
    replay = BoxReplay(memory_dir, old_classes=CLASSES, modes=(mode, ),
                       prob=1.0, max_crops=3, max_overlap=0.3, seed=0)
    gt = [[30, 20, 70, 50]]
    before = _loaded(gt, [3])
    img_before = before['img'].copy()
    out = replay(before)
    boxes, labels = out['gt_bboxes'], out['gt_bboxes_labels']
    assert isinstance(boxes, HorizontalBoxes)
    added = boxes.numpy()[1:]
    assert len(added) >= 1 and labels[0] == 3
    np.testing.assert_array_equal(boxes.numpy()[0], gt[0])
    assert set(labels[1:]) <= {0, 1, 2}
    assert not out['gt_ignore_flags'].any()
    assert len(out['gt_ignore_flags']) == len(labels) == len(boxes)
    assert (added >= 0).all() and (added[:, [0, 2]] <= 80).all()
    assert (added[:, [1, 3]] <= 64).all()
    assert ((added[:, 2:] - added[:, :2]) > 0).all()
    # each replayed object shows: pasted pixels are the crop's
    changed = (out['img'] != img_before).any(axis=2)
    for x1, y1, x2, y2 in added.astype(int):
        assert changed[y1:y2, x1:x2].mean() > 0.5
    if mode == 'paste':
        memory = replay.memory
        crops = [memory.read(i) for i in range(len(memory))]
        ix1, iy1 = (int(v) for v in added[-1][:2])  # on top
        patch = out['img'][iy1:iy1 + 10, ix1:ix1 + 12]
        sources = [memory.crops[i]['label'] for i, c in enumerate(crops)
                   if any((c[y:y + 10, x:x + 12] == patch).all()
                          for y in range(c.shape[0] - 9)
                          for x in range(c.shape[1] - 11))]
        assert labels[-1] in sources


def test_replayed_labels_follow_old_plus_new_order(tmp_path, smears):
    # a step 1+2: the memory knows RBC only; new labels are 1 and 2
    base = _Smears(smears.images, metainfo=dict(classes=('RBC', )))
    build_replay_memory(base, str(tmp_path / 'rbc'), budget=4)
    replay = BoxReplay(str(tmp_path / 'rbc'), old_classes=('RBC', ),
                       prob=1.0, max_crops=4, max_overlap=0.0, seed=2)
    sample = _loaded([[30, 20, 70, 50], [0, 50, 10, 60]], [1, 2])
    gt_pixels = sample['img'][20:50, 30:70].copy()
    out = replay(sample)
    assert list(out['gt_bboxes_labels'][:2]) == [1, 2]
    assert len(out['gt_bboxes_labels']) > 2
    assert (out['gt_bboxes_labels'][2:] == 0).all()
    # max_overlap=0: no crop covers a ground-truth box
    assert (out['img'][20:50, 30:70] == gt_pixels).all()


def test_replay_with_no_gt_and_with_an_empty_memory(tmp_path, memory_dir):
    replay = BoxReplay(memory_dir, old_classes=CLASSES, prob=1.0, seed=0)
    out = replay(_loaded([], []))
    assert len(out['gt_bboxes']) >= 1
    assert len(out['gt_bboxes_labels']) == len(out['gt_ignore_flags']) == \
        len(out['gt_bboxes'])
    # a memory of a dataset without a box: no crop, images pass unchanged
    empty_ds = _Smears(_images(tmp_path, [[]]))
    empty = build_replay_memory(empty_ds, str(tmp_path / 'empty'), budget=5)
    assert len(empty) == 0
    assert empty.counts() == {c: 0 for c in CLASSES}
    replay = BoxReplay(str(tmp_path / 'empty'), old_classes=CLASSES,
                       prob=1.0, seed=0)
    sample = _loaded([[1, 1, 9, 9]], [0])
    img = sample['img'].copy()
    out = replay(sample)
    assert len(out['gt_bboxes']) == 1 and (out['img'] == img).all()


def test_replay_is_reproducible_with_a_seed(memory_dir):
    def run(seed, n=6):
        replay = BoxReplay(memory_dir, old_classes=CLASSES, prob=0.7,
                           seed=seed)
        outs = [replay(_loaded([[30, 20, 70, 50]], [3])) for _ in range(n)]
        return ([o['gt_bboxes'].numpy() for o in outs],
                [o['img'] for o in outs])
    (b0, i0), (b1, i1) = run(0), run(0)
    assert all((x == y).all() for x, y in zip(b0, b1))
    assert all((x == y).all() for x, y in zip(i0, i1))
    b2, _ = run(5)
    assert any(x.shape != y.shape or (x != y).any() for x, y in zip(b0, b2))
    # seed=None draws from numpy's global generator (seeded by mmengine)
    np.random.seed(3)
    first, _ = run(None)
    np.random.seed(3)
    second, _ = run(None)
    assert all((x == y).all() for x, y in zip(first, second))


def test_replay_bad_arguments(memory_dir):
    with pytest.raises(ValueError, match='modes'):
        BoxReplay(memory_dir, old_classes=CLASSES, modes=('tile', ))
    with pytest.raises(ValueError, match='prob'):
        BoxReplay(memory_dir, old_classes=CLASSES, prob=2)
    replay = BoxReplay(memory_dir, old_classes=CLASSES, prob=1.0)
    with pytest.raises(KeyError, match='after LoadAnnotations'):
        replay(dict(img=np.zeros((8, 8, 3), np.uint8)))


def _runner(tmp_path, dataset, ckpt_out_dir=None):
    hooks = []
    if ckpt_out_dir is not None:
        hook = CheckpointHook(interval=1)
        hook.out_dir = ckpt_out_dir  # as its before_train leaves it
        hooks.append(hook)
    return SimpleNamespace(work_dir=str(tmp_path / 'work'), hooks=hooks,
                           train_dataloader=SimpleNamespace(dataset=dataset))


def _step_with_memory(tmp_path, smears, memory):
    """Run a ReplayMemoryHook (budget 2) over a 1+2 step whose old memory
    is ``memory``, checkpoints in ``ckpts``; the hook."""
    step = NewClassDataset(smears, old_classes=('RBC', ),
                           new_classes=('WBC', 'Platelets'),
                           on_old_labels='warn')
    hook = ReplayMemoryHook(memory=memory, budget=2)
    runner = _runner(tmp_path, step, ckpt_out_dir=str(tmp_path / 'ckpts'))
    hook.before_train(runner)
    hook.after_train(runner)
    return hook


def test_hook_writes_the_next_memory_next_to_the_checkpoint(tmp_path,
                                                            smears):
    # step 1 memory: RBC only (the base model's data)
    base = _Smears(smears.images, metainfo=dict(classes=('RBC', )))
    old = build_replay_memory(base, str(tmp_path / 'step1'), budget=3)
    assert old.classes == ('RBC', ) and old.counts() == {'RBC': 3}
    hook = _step_with_memory(tmp_path, smears, str(tmp_path / 'step1'))
    assert hook.out_dir == str(tmp_path / 'ckpts' / 'replay_memory')
    new = load_replay_memory(hook.out_dir, CLASSES)
    # RBC from the old memory, re-sampled to the budget; the new classes
    # from the step's data
    assert new.counts() == {'RBC': 2, 'WBC': 2, 'Platelets': 1}
    old_boxes = [c['box'] for c in old.crops]
    assert all(c['box'] in old_boxes for c in new.crops if c['label'] == 0)
    for i in range(len(new)):
        assert new.read(i).ndim == 3
    # without a CheckpointHook: the work dir; a first step (no memory)
    hook = ReplayMemoryHook(budget=1)
    runner = _runner(tmp_path, smears)
    hook.before_train(runner)
    hook.after_train(runner)
    assert load_replay_memory(osp.join(runner.work_dir, 'replay_memory'),
                              CLASSES).counts() == {c: 1 for c in CLASSES}


def test_hook_carries_an_empty_old_memory_forward(tmp_path, smears,
                                                 monkeypatch):
    """The previous memory holds no crop (its data had no box): the next
    memory has no RBC crop either, says so, and still cuts the new ones."""
    from projects.IncrementalDet.incremental_det import replay_memory
    logged = []
    monkeypatch.setattr(replay_memory, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    blank = _Smears(_images(tmp_path, [[]]), metainfo=dict(classes=('RBC', )))
    empty = build_replay_memory(blank, str(tmp_path / 'step1'), budget=3)
    assert empty.counts() == {'RBC': 0}
    hook = _step_with_memory(tmp_path, smears, str(tmp_path / 'step1'))
    new = load_replay_memory(hook.out_dir, CLASSES)
    assert new.counts() == {'RBC': 0, 'WBC': 2, 'Platelets': 1}
    warned = [m for m, kw in logged if kw.get('level') == logging.WARNING]
    assert any("have 0 crops (['RBC'])" in m for m in warned), warned


def test_hook_refuses_a_memory_of_other_classes(tmp_path, smears):
    other = _Smears(smears.images, metainfo=dict(classes=('WBC', )))
    build_replay_memory(other, str(tmp_path / 'wbc'), budget=1)
    step = NewClassDataset(smears, old_classes=('RBC', ),
                           new_classes=('WBC', 'Platelets'),
                           on_old_labels='warn')
    hook = ReplayMemoryHook(memory=str(tmp_path / 'wbc'))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / 'wbc'))):
        hook.before_train(_runner(tmp_path, step))
    with pytest.raises(ValueError, match='budget'):
        ReplayMemoryHook(budget=0)


def test_build_tool_writes_a_memory_from_a_config(tmp_path, tiny_config):
    import importlib.util

    from conftest import REPO
    path = osp.join(REPO, 'projects', 'IncrementalDet', 'tools',
                    'build_replay_memory.py')
    spec = importlib.util.spec_from_file_location('build_replay_memory', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'memory')
    tool.main([tiny_config, '--out', out, '--budget', '3', '--seed', '1'])
    memory = load_replay_memory(out)
    counts = memory.counts()
    assert len(counts) >= 1 and max(counts.values()) == 3
    assert (memory.budget, memory.seed) == (3, 1)
    assert all(osp.isfile(osp.join(out, c['file'])) for c in memory.crops)


def test_hook_refuses_to_overwrite_the_old_memory_before_training(
        tmp_path, smears):
    """The new memory's folder is the old one: refused in before_train,
    not after the whole training."""
    base = _Smears(smears.images, metainfo=dict(classes=('RBC', )))
    build_replay_memory(base, str(tmp_path / 'ckpts' / 'replay_memory'),
                        budget=1)
    step = NewClassDataset(smears, old_classes=('RBC', ),
                           new_classes=('WBC', 'Platelets'),
                           on_old_labels='warn')
    hook = ReplayMemoryHook(memory=str(tmp_path / 'ckpts' / 'replay_memory'))
    runner = _runner(tmp_path, step, ckpt_out_dir=str(tmp_path / 'ckpts'))
    with pytest.raises(ValueError, match='the old memory itself'):
        hook.before_train(runner)


def test_a_class_without_crops_is_warned_about(tmp_path, smears,
                                               monkeypatch):
    from projects.IncrementalDet.incremental_det import replay_memory
    logged = []
    monkeypatch.setattr(replay_memory, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    four = _Smears(smears.images,
                   metainfo=dict(classes=CLASSES + ('Other', )))
    memory = build_replay_memory(four, str(tmp_path / 'm'), budget=1)
    assert memory.counts()['Other'] == 0
    warned = [m for m, kw in logged if kw.get('level') == logging.WARNING]
    assert len(warned) == 1
    assert "1 of 4 classes have 0 crops (['Other'])" in warned[0]
    logged.clear()
    build_replay_memory(smears, str(tmp_path / 'n'), budget=1)
    assert not [m for m, kw in logged if kw.get('level') == logging.WARNING]


def test_boxes_left_out_are_counted_and_logged(tmp_path, monkeypatch):
    """A chosen box outside its image and boxes under min_size are not
    cropped: each is counted in a warning, not dropped silently."""
    from projects.IncrementalDet.incremental_det import replay_memory
    logged = []
    monkeypatch.setattr(replay_memory, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    # one RBC inside, one past the 80x64 image; one WBC of zero width
    class _WithAFlatBox(_Smears):
        def load_data_list(self):
            infos = super().load_data_list()
            infos[0]['instances'].append(
                dict(bbox=[5, 5, 5, 15], bbox_label=1, ignore_flag=0))
            return infos

    data = _WithAFlatBox(_images(tmp_path, [[(0, 2, 2), (0, 200, 200)]]))
    memory = build_replay_memory(data, str(tmp_path / 'm'), budget=5)
    assert memory.counts()['RBC'] == 1
    warned = [m for m, kw in logged if kw.get('level') == logging.WARNING]
    assert any('left out 1 box(es) of zero size' in m for m in warned)
    assert any("1 chosen box(es) lie outside their image and were not "
               "cropped (per class: {'RBC': 1})" in m for m in warned)


def test_overlap_is_refused_from_either_side():
    # ABR's compute_overlap: a small crop lying on a large box is refused
    # as well as a large crop hiding a small box
    big = np.array([[0, 0, 100, 100]], np.float32)
    assert _covered(big, (10, 10, 20, 20)) == pytest.approx(1.0)
    small = np.array([[10, 10, 20, 20]], np.float32)
    assert _covered(small, (0, 0, 100, 100)) == pytest.approx(1.0)
    assert _covered(big, (90, 90, 110, 110)) == pytest.approx(0.25)
    assert _covered(np.zeros((0, 4), np.float32), (0, 0, 5, 5)) == 0.0


def test_replayed_crop_does_not_sit_on_a_large_box(memory_dir):
    # a new-class box over the left 60 % of the image: with a one-sided
    # test an 18x16 crop (9 % of the box) could lie anywhere inside it
    replay = BoxReplay(memory_dir, old_classes=CLASSES, modes=('paste', ),
                       prob=1.0, max_crops=3, max_overlap=0.3, seed=0)
    added = []
    for _ in range(10):
        out = replay(_loaded([[0, 0, 48, 64]], [3]))
        added += list(out['gt_bboxes'].numpy()[1:])
    assert len(added) >= 5
    for x1, y1, x2, y2 in added:
        inside = max(0., min(x2, 48) - x1) * (y2 - y1)
        assert inside / ((x2 - x1) * (y2 - y1)) <= 0.3


def test_mosaic_replaces_the_image_by_four_old_class_crops(memory_dir):
    """ABR's mosaic: a square grey canvas, side the mean of the image's
    sides, four crops around the centre, the crops' labels only."""
    replay = BoxReplay(memory_dir, old_classes=CLASSES, modes=('mosaic', ),
                       prob=1.0, seed=0)
    out = replay(_loaded([[30, 20, 70, 50]], [3]))
    side = (64 + 80) // 2
    assert out['img'].shape == (side, side, 3)
    assert tuple(out['img_shape']) == (side, side)
    boxes, labels = out['gt_bboxes'].numpy(), out['gt_bboxes_labels']
    assert isinstance(out['gt_bboxes'], HorizontalBoxes)
    assert len(boxes) == 4 and set(labels) <= {0, 1, 2}  # no label 3
    assert not out['gt_ignore_flags'].any() and len(out['gt_ignore_flags'])
    assert (boxes >= 0).all() and (boxes <= side).all()
    assert ((boxes[:, 2:] - boxes[:, :2]) > 2).all()
    assert (out['img'] == 114).all(axis=2).any()  # the grey canvas
    # crops of 16 px mean side on a 72 px canvas are kept at their size,
    # and each box holds the pixels of a stored crop's box
    memory = replay.memory
    crops = [(memory.read(i), memory.crops[i]['box_in_crop'])
             for i in range(len(memory))]
    for (x1, y1, x2, y2), label in zip(boxes.astype(int), labels):
        patch = out['img'][y1 + 1:y2 - 1, x1 + 1:x2 - 1]
        assert any((c[y:y + patch.shape[0], x:x + patch.shape[1]] ==
                    patch).all() and memory.crops[i]['label'] == label
                   for i, (c, _) in enumerate(crops)
                   for y in range(c.shape[0] - patch.shape[0] + 1)
                   for x in range(c.shape[1] - patch.shape[1] + 1))
    # seeded: the same canvas again; an image without ground truth too
    again = BoxReplay(memory_dir, old_classes=CLASSES, modes=('mosaic', ),
                      prob=1.0, seed=0)(_loaded([[30, 20, 70, 50]], [3]))
    assert (again['img'] == out['img']).all()
    empty = replay(_loaded([], []))
    assert len(empty['gt_bboxes']) == 4


def test_mosaic_rescales_crops_far_from_the_image_size(memory_dir):
    """ABR rescales a crop whose mean side is outside 0.2 to 0.7 of the
    image's to 0.4 to 0.6 of it: 16 px crops on a 400 px image grow to
    160 to 240 px (the boxes inside them to about 120 or more)."""
    replay = BoxReplay(memory_dir, old_classes=CLASSES, modes=('mosaic', ),
                       prob=1.0, seed=3)
    out = replay(_loaded([[30, 20, 70, 50]], [3], shape=(400, 400)))
    boxes = out['gt_bboxes'].numpy()
    sides = (boxes[:, 2:] - boxes[:, :2]).mean(axis=1)
    assert out['img'].shape == (400, 400, 3)
    # a crop may be cut at the canvas edge; the largest is not
    assert sides.max() > 100


def test_mosaic_survives_a_thin_crop(tmp_path):
    """A 1 x 1000 crop, shrunk by ABR's rule to about half, keeps one
    pixel of height (a resize to 0 pixels would raise in the worker)."""
    base = _Smears(_images(tmp_path, [[]]))
    out = str(tmp_path / 'thin')
    build_replay_memory(base, out, budget=1)
    mmcv.imwrite(np.full((1, 1000, 3), 200, np.uint8),
                 osp.join(out, 'crops', '00000_RBC.png'))
    index = json.load(open(osp.join(out, 'index.json')))
    index['crops'] = [dict(file='crops/00000_RBC.png', label=0,
                           **{'class': 'RBC'}, source='x',
                           box=[0, 0, 1000, 1], box_in_crop=[0, 0, 1000, 1])]
    json.dump(index, open(osp.join(out, 'index.json'), 'w'))
    replay = BoxReplay(out, old_classes=CLASSES, modes=('mosaic', ),
                       prob=1.0, seed=0)
    results = _loaded([[30, 20, 70, 50]], [3], shape=(400, 600))
    img = results['img'].copy()
    out = replay(results)
    # every box is then 1 pixel high and dropped (ABR drops boxes of 2
    # pixels or less): the sample stays the new image with its labels
    assert (out['img'] == img).all() and list(out['gt_bboxes_labels']) == [3]
