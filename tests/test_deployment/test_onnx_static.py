"""Static ONNX export: smaller inputs padded, larger inputs refused."""
import os.path as osp

import cv2
import numpy as np
import pytest

from rcnn_plugin.apis import capture_input, instances_to_dicts, predict_dicts
from rcnn_plugin.deployment import compare_detections, read_meta

from conftest import load_tool

pytest.importorskip('onnxruntime', reason='needs the deploy extra: '
                    "pip install -e '.[deploy]'")


def _export_tool():
    return load_tool('deployment', 'export_onnx.py')


def test_smaller_input_gives_pytorch_detections_of_the_padded_batch(
        torch_predictor, ort_predictor, static_onnx, cell_images):
    graph = read_meta(static_onnx)['input_shape']
    assert graph == '[1, 3, 320, 320]'  # the 96x96 check image
    small = [np.ascontiguousarray(cell_images[1][:, :48]),  # 320x160 input
             np.ascontiguousarray(cell_images[1][:64])]  # 224x320 input
    assert [tuple(capture_input(torch_predictor, im).shape[2:])
            for im in small] == [(320, 160), (224, 320)]
    with pytest.warns(UserWarning, match='padded to the static graph'):
        got = predict_dicts(ort_predictor, small)
    # mmdet pads a batch to its largest input: PyTorch on [the 320x320
    # image, a small one] sees the small one zero-padded to 320x320, as the
    # static graph does. Same boxes (not shifted or scaled), same scores.
    padded = [instances_to_dicts(torch_predictor.predict(
        [cell_images[0], im])[1], precise=True) for im in small]
    report = compare_detections(padded, got)
    assert report['per_image'] == [1.0, 1.0]
    assert report['max_box_diff'] < 1e-3
    assert report['max_score_diff'] < 1e-4
    for image, dets in zip(small, got):  # nothing inside the padding
        h, w = image.shape[:2]
        boxes = np.array([d['bbox_xyxy'] for d in dets])
        assert len(boxes) and boxes.min() >= 0
        assert boxes[:, [0, 2]].max() <= w and boxes[:, [1, 3]].max() <= h


def test_export_tool_refuses_a_larger_check_image_without_traceback(
        tmp_path, deploy_config, cell_images, capsys):
    small = str(tmp_path / 'small.png')  # first: fixes a 320x160 graph
    cv2.imwrite(small, np.ascontiguousarray(cell_images[0][:, :48]))
    large = str(tmp_path / 'large.png')  # 320x320 input: too large
    cv2.imwrite(large, cell_images[1])
    status = _export_tool().main([
        deploy_config, 'none', '--out', str(tmp_path / 'static.onnx'),
        '--check-images', small, large])
    assert status == 1
    err = capsys.readouterr().err
    assert 'larger than the static ONNX graph (320x160)' in err
    assert 'export with --dynamic' in err


def test_export_tool_checks_its_arguments_before_exporting(
        tmp_path, deploy_config, capsys, monkeypatch):
    tool = _export_tool()
    out = str(tmp_path / 'm.onnx')
    with pytest.raises(SystemExit):  # mmengine's traceback before
        tool.main([deploy_config, str(tmp_path / 'missing.pth'), '--out',
                   out])
    assert 'checkpoint file not found' in capsys.readouterr().err

    def missing(backend):
        raise ImportError(f'backend {backend!r} needs the package')
    # openvino absent: an ImportError traceback after the files were
    # written.
    monkeypatch.setattr(tool, 'require_backend', missing)
    with pytest.raises(SystemExit):
        tool.main([deploy_config, 'none', '--out', out, '--backends',
                   'openvino'])
    assert "--backends openvino: backend 'openvino' needs" in \
        capsys.readouterr().err
    assert not osp.exists(out)


def test_export_tool_makes_the_out_folder_first(tmp_path, deploy_config,
                                                cell_images, monkeypatch):
    # docs/deployment.md's --out work_dirs/deploy/demo.onnx on a fresh
    # clone: a FileNotFoundError traceback, after the reference run.
    tool = _export_tool()
    folder = tmp_path / 'work_dirs' / 'deploy'
    image = str(tmp_path / 'check.png')
    cv2.imwrite(image, cell_images[0])
    reference = tool.predict_dicts

    def predict_dicts(*args, **kwargs):
        assert folder.is_dir()  # made before the slow work
        return reference(*args, **kwargs)
    monkeypatch.setattr(tool, 'predict_dicts', predict_dicts)
    assert tool.main([deploy_config, 'none', '--out',
                      str(folder / 'demo.onnx'), '--check-images',
                      image]) == 0
    assert (folder / 'demo.onnx').is_file()
    assert (folder / 'demo.bbox.onnx').is_file()
