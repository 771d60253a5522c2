"""tools/analysis/benchmark_deploy.py: VOC mAP@0.5, COCO box AP and, for
Mask R-CNN, mask AP per row (rcnn_plugin.deployment.BackendAccuracy)."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from PIL import Image

from rcnn_plugin.deployment import BackendAccuracy

from conftest import REPO, shrink_model

TOOL = osp.join(REPO, 'tools', 'analysis', 'benchmark_deploy.py')
BALLOON = osp.join(REPO, 'configs', 'balloon',
                   'mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py')
# Two images of different sizes (W, H), two or three balloons each.
IMAGES = {
    'a.jpg': ((128, 96), [[(10, 10), (50, 12), (45, 60), (12, 50)],
                          [(70, 20), (110, 30), (90, 80)],
                          [(60, 60), (75, 62), (70, 90), (58, 85)]]),
    'b.jpg': ((112, 80), [[(5, 5), (40, 8), (30, 40)],
                          [(50, 30), (100, 35), (95, 75), (55, 70)]]),
}


def _tool():
    spec = importlib.util.spec_from_file_location('benchmark_deploy', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_via(root) -> None:
    """A balloon-like split ``val/`` (VIA polygons) under ``root``."""
    split = root / 'val'
    split.mkdir(parents=True)
    data = {}
    rng = np.random.default_rng(0)
    for name, (size, polygons) in IMAGES.items():
        pixels = rng.integers(0, 255, (size[1], size[0], 3), np.uint8)
        Image.fromarray(pixels).save(split / name)
        regions = [dict(shape_attributes=dict(
            name='polygon', all_points_x=[x for x, _ in poly],
            all_points_y=[y for _, y in poly]), region_attributes={})
            for poly in polygons]
        data[name] = dict(filename=name, size=1, regions=regions,
                          file_attributes={})
    (split / 'via_region_data.json').write_text(json.dumps(data))


@pytest.fixture(scope='module')
def via_infos(tmp_path_factory):
    """(data_info, (H, W)) of each generated image."""
    from rcnn_plugin.datasets import BalloonDataset
    root = tmp_path_factory.mktemp('via')
    _write_via(root)
    ds = BalloonDataset(data_root=str(root), ann_file='val/via_region_data'
                        '.json', data_prefix=dict(img='val/'), pipeline=[],
                        test_mode=True)
    return [(ds.get_data_info(i), (ds.get_data_info(i)['height'],
                                   ds.get_data_info(i)['width']))
            for i in range(len(ds))]


def _oracle(info: dict, shape, masks: bool = True) -> InstanceData:
    """The ground truth of one image as a prediction (scores 1)."""
    from pycocotools import mask as mask_util
    inst = info['instances']
    pred = InstanceData(
        bboxes=torch.tensor([i['bbox'] for i in inst], dtype=torch.float32),
        scores=torch.ones(len(inst)),
        labels=torch.tensor([i['bbox_label'] for i in inst]))
    if masks:
        pred.masks = torch.from_numpy(np.stack([mask_util.decode(
            mask_util.merge(mask_util.frPyObjects(i['mask'], *shape)))
            for i in inst]).astype(bool))
    return pred


def _score(via_infos, change=None, masks=True) -> dict:
    acc = BackendAccuracy(['balloon'])
    for k, (info, shape) in enumerate(via_infos):
        pred = _oracle(info, shape, masks)
        if change is not None and k == 0:
            change(pred)
        acc.add(info, pred, shape + (3, ))
    return acc.compute()


def test_ground_truth_as_prediction_scores_one(via_infos):
    res = _score(via_infos)
    assert res == dict(map50=1.0, box_ap=1.0, box_ap50=1.0, mask_ap=1.0,
                       mask_ap50=1.0)


def test_shifted_box_lowers_box_ap_only(via_infos):
    def shift(pred):  # first box 40 px wide: IoU 0.6 after 10 px
        pred.bboxes[0, [0, 2]] += 10
    res = _score(via_infos, shift)
    assert res['box_ap'] < 0.95
    assert res['box_ap50'] == 1.0 and res['map50'] == 1.0
    assert res['mask_ap'] == 1.0 and res['mask_ap50'] == 1.0


def test_eroded_mask_lowers_mask_ap_only(via_infos):
    def erode(pred):  # keep the left third of the first mask: IoU < 0.5
        cols = pred.masks[0].any(0).nonzero().flatten()
        cut = int(cols.min() + (cols.max() - cols.min()) / 3)
        pred.masks[0, :, cut:] = False
    res = _score(via_infos, erode)
    assert res['mask_ap'] < 0.95 and res['mask_ap50'] < 1.0
    assert res['box_ap'] == 1.0


def test_box_only_predictions_have_no_mask_ap(via_infos):
    res = _score(via_infos, masks=False)
    assert res['box_ap'] == 1.0
    assert res['mask_ap'] is None and res['mask_ap50'] is None


def test_ground_truth_without_masks_has_no_mask_ap(via_infos):
    info, shape = via_infos[0]
    pred = _oracle(info, shape)
    boxes_only = dict(info, instances=[
        {k: v for k, v in i.items() if k != 'mask'}
        for i in info['instances']])
    acc = BackendAccuracy(['balloon'])
    acc.add(boxes_only, pred, shape)
    assert not acc.with_mask
    res = acc.compute()
    assert res['box_ap'] == 1.0 and res['mask_ap'] is None


def test_no_detections_score_zero(via_infos):
    acc = BackendAccuracy(['balloon'])
    for info, shape in via_infos:
        acc.add(info, InstanceData(
            bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
            labels=torch.zeros(0, dtype=torch.long),
            masks=torch.zeros(0, *shape, dtype=torch.bool)), shape)
    res = acc.compute()
    assert res['map50'] == 0.0 and res['box_ap'] == 0.0
    assert res['mask_ap'] == 0.0


def test_split_without_ground_truth_has_no_coco_ap(via_infos):
    """pycocotools' -1 (nothing to score) becomes None, not -1.0."""
    acc = BackendAccuracy(['balloon'])
    for info, shape in via_infos:
        empty = dict(info, instances=[])
        acc.add(empty, InstanceData(
            bboxes=torch.tensor([[0., 0., 10., 10.]]),
            scores=torch.tensor([0.9]), labels=torch.tensor([0])), shape)
    res = acc.compute()
    assert res['box_ap'] is None and res['box_ap50'] is None


@pytest.fixture(scope='module')
def mask_config(tmp_path_factory):
    """The balloon Mask R-CNN config, shrunk, on the generated split."""
    root = tmp_path_factory.mktemp('balloon')
    _write_via(root)
    cfg = Config.fromfile(BALLOON)
    cfg.model = shrink_model(cfg.model)
    cfg.model.test_cfg.rcnn.score_thr = 0.0  # random weights: low scores
    cfg.test_dataloader.dataset.data_root = str(root) + '/'
    path = str(root / 'tiny_mask-rcnn.py')
    cfg.dump(path)
    return path


def _worker(tool, config, row, tmp_path, ckpt='none', **files) -> dict:
    out = tmp_path / f'{row}.json'
    argv = [config, ckpt, '--threads', '1', '--warmup', '1']
    for key, path in files.items():
        argv += [f"--{key.replace('_', '-')}", path]
    tool.main(argv + ['--worker', row, '--worker-out', str(out)])
    return json.loads(out.read_text())


def test_worker_scores_oracle_predictions_one(mask_config, via_infos,
                                              tmp_path, monkeypatch):
    """The worker pairs image i with the dataset's data_info i."""
    import rcnn_plugin.apis as apis
    by_shape = {shape: _oracle(info, shape) for info, shape in via_infos}

    class Oracle:
        classes = ['balloon']
        read = staticmethod(apis.read_image)  # as a Predictor reads files

        def predict(self, images):
            return [by_shape[img.shape[:2]] for img in images]
    monkeypatch.setattr(apis, 'make_predictor', lambda *a: Oracle())
    res = _worker(_tool(), mask_config, 'pytorch', tmp_path)
    assert res['images'] == 2 and len(res['dets'][0]) == 3
    assert {k: res[k] for k in ('map50', 'box_ap', 'box_ap50', 'mask_ap',
                                'mask_ap50')} == dict(
        map50=1.0, box_ap=1.0, box_ap50=1.0, mask_ap=1.0, mask_ap50=1.0)


def test_worker_leaves_out_undecodable_images_keeping_gt_aligned(
        mask_config, via_infos, tmp_path, monkeypatch, capsys):
    """An image that does not decode (read gives None) crashed inside mmdet
    with a bare NotImplementedError; the others keep their ground truth."""
    import rcnn_plugin.apis as apis
    by_shape = {shape: _oracle(info, shape) for info, shape in via_infos}

    class Oracle:
        classes = ['balloon']

        @staticmethod
        def read(path):  # a.jpg, the dataset's image 0, does not decode
            return None if path.endswith('a.jpg') else apis.read_image(path)

        def predict(self, images):
            return [by_shape[img.shape[:2]] for img in images]
    monkeypatch.setattr(apis, 'make_predictor', lambda *a: Oracle())
    res = _worker(_tool(), mask_config, 'pytorch', tmp_path)
    assert res['images'] == 1 and res['skipped'] == 1
    # b.jpg's detections scored against b.jpg's ground truth (index 1)
    assert res['map50'] == 1.0 and res['box_ap'] == 1.0
    out = capsys.readouterr().out
    assert '[benchmark] pytorch: skipped 1 test image(s) that do not ' \
        'decode' in out and 'a.jpg' in out
    # the table says so too (the count was only in the worker's JSON)
    table = _tool().summarise({'pytorch': res})
    assert 'pytorch: 1 test image(s) did not decode' in _tool().format_table(
        table, {'pytorch': res})
    monkeypatch.setattr(Oracle, 'read', staticmethod(lambda path: None))
    with pytest.raises(SystemExit, match='none of the 2 test images '
                       'decodes'):
        _worker(_tool(), mask_config, 'pytorch', tmp_path)


def _run_in_process(tool, tmp_path, monkeypatch) -> None:
    """``run_row`` without a subprocess (same worker, same JSON)."""
    def run_row(argv, row):
        out = tmp_path / f'{row}.json'
        tool.main([*argv, '--worker', row, '--worker-out', str(out)])
        return json.loads(out.read_text())
    monkeypatch.setattr(tool, 'run_row', run_row)


@pytest.mark.slow
def test_mask_rcnn_rows_report_mask_ap(mask_config, tmp_path, monkeypatch,
                                       capsys):
    """A random tiny Mask R-CNN, PyTorch and its ONNX Runtime export: both
    rows get box and mask AP, equal, and the same detections."""
    pytest.importorskip('onnxruntime')
    from rcnn_plugin.apis import Predictor, capture_input, read_image
    from rcnn_plugin.deployment import export_onnx
    torch.manual_seed(0)
    predictor = Predictor(mask_config, None, 'cpu')
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save(dict(state_dict=predictor.model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('balloon', )))),
               ckpt)
    image = read_image(str(osp.join(osp.dirname(mask_config), 'val',
                                    'a.jpg')))
    onnx = str(tmp_path / 'tiny.onnx')
    export_onnx(predictor.model, predictor.inferencer.cfg, onnx,
                predictor.classes, capture_input(predictor, image),
                dynamic=True)
    tool = _tool()
    _run_in_process(tool, tmp_path, monkeypatch)
    out = tmp_path / 'bench.json'
    tool.main([mask_config, ckpt, '--onnx', onnx, '--rows', 'pytorch',
               'onnxruntime-fp32', '--threads', '1', '--warmup', '1',
               '--out', str(out)])
    rows = {r['row']: r for r in json.loads(out.read_text())['rows']}
    eager, ort = rows['pytorch'], rows['onnxruntime-fp32']
    for key in ('box_ap', 'box_ap50', 'mask_ap', 'mask_ap50'):
        assert isinstance(eager[key], float) and 0 <= eager[key] <= 1, key
        assert ort[key] == pytest.approx(eager[key], abs=1e-3), key
    assert ort['match_fraction'] == 1.0
    dets = json.loads((tmp_path / 'pytorch.json').read_text())['dets']
    assert all(d and 'segmentation' in d[0] for d in dets)  # not vacuous
    table = capsys.readouterr().out
    assert '| mask AP | mask AP50 |' in table
    line = next(ln for ln in table.splitlines()
                if ln.startswith('| onnxruntime-fp32 |'))
    assert len(line.split('|')) == 15 and ' - ' not in line


@pytest.mark.slow
def test_faster_rcnn_row_has_no_mask_columns(deploy_config, tmp_path,
                                             monkeypatch, capsys):
    tool = _tool()
    _run_in_process(tool, tmp_path, monkeypatch)
    out = tmp_path / 'bench.json'
    tool.main([deploy_config, 'none', '--threads', '1', '--warmup', '0',
               '--num-images', '2', '--out', str(out)])
    (row, ) = json.loads(out.read_text())['rows']
    assert row['row'] == 'pytorch'
    assert isinstance(row['box_ap'], float) and 0 <= row['box_ap'] <= 1
    assert row['mask_ap'] is None and row['mask_ap50'] is None
    line = next(ln for ln in capsys.readouterr().out.splitlines()
                if ln.startswith('| pytorch |'))
    cells = [c.strip() for c in line.split('|')[1:-1]]
    assert cells[7] != '-' and cells[9:11] == ['-', '-']


def test_cfg_options_reach_every_row(mask_config, tmp_path):
    """``--cfg-options`` changes the predictor's test-time settings."""
    tool = _tool()
    argv = [mask_config, 'none', '--threads', '1', '--warmup', '0']
    full = tmp_path / 'full.json'
    tool.main(argv + ['--worker', 'pytorch', '--worker-out', str(full)])
    one = tmp_path / 'one.json'
    tool.main(argv + ['--cfg-options', 'model.test_cfg.rcnn.max_per_img=1',
                      '--worker', 'pytorch', '--worker-out', str(one)])
    counts = [len(d) for d in json.loads(full.read_text())['dets']]
    assert max(counts) > 1  # score_thr 0: random weights give many
    assert [len(d) for d in json.loads(one.read_text())['dets']] == [
        1] * len(counts)


def _fake(latencies, dets=()):
    return dict(latencies=latencies, images=len(latencies), dets=list(dets),
                peak_rss_mb=1.0, rss_after_imports_mb=1.0, map50=0.5,
                box_ap=None, box_ap50=None, mask_ap=None, mask_ap50=None)


def test_speedup_is_the_median_of_per_round_ratios():
    """Rows run one after another in their own processes: each round's
    ratio is taken before the median, so a slow spell in one row's run
    does not decide it."""
    tool = _tool()
    rounds = [dict(pytorch=[1.0, 1.0], openvino=[0.5, 0.5]),
              dict(pytorch=[1.0, 1.0], openvino=[0.5, 0.5]),
              dict(pytorch=[1.0, 1.0], openvino=[5.0, 5.0])]  # a slow spell
    results = {k: _fake([t for r in rounds for t in r[k]], [[]] * 6)
               for k in ('pytorch', 'openvino')}
    table = {r['row']: r for r in tool.summarise(results, rounds)}
    assert table['openvino']['speedup'] == pytest.approx(2.0)
    assert table['openvino']['speedup_rounds'] == pytest.approx(
        [2.0, 2.0, 0.2])
    # without the pytorch row nothing is compared: '-', not 0.00
    alone = tool.summarise({'openvino': results['openvino']})
    line = tool.format_table(alone, {'openvino': results['openvino']})
    cells = [c.strip() for c in line.splitlines()[-1].split('|')[1:-1]]
    assert cells[4] == '-' and cells[-2:] == ['-', '-']


def test_a_row_without_its_file_is_a_sentence(deploy_config):
    with pytest.raises(SystemExit, match=r"these rows need their file: "
                       r"\['onnxruntime-fp32 \(--onnx\)'\]"):
        _tool().main([deploy_config, 'none', '--rows', 'onnxruntime-fp32'])


def test_worker_says_when_the_test_split_cannot_be_read(tmp_path):
    """A missing annotation file was a FileNotFoundError traceback."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'demo',
        'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py'))
    cfg.test_dataloader.dataset.data_root = str(tmp_path / 'nowhere') + '/'
    config = str(tmp_path / 'missing_test.py')
    cfg.dump(config)
    with pytest.raises(SystemExit, match=r'error: the test split of .*'
                       r'missing_test\.py cannot be read \(.*nowhere'):
        _worker(_tool(), config, 'pytorch', tmp_path)
