"""Class names that only the dataset files give (a YOLO names file): the
ONNX backends load an export of such a config, and without the files the
export tool says which config and files it needs."""

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from rcnn_plugin.apis import OnnxPredictor, Predictor

from conftest import export_tiny, load_tool

pytest.importorskip('onnxruntime', reason='needs the deploy extra: '
                    "pip install -e '.[deploy]'")

NAMES = ['pedestrian', 'cyclist', 'vehicle']  # as kitti_yolo's obj.names


def _export_tool():
    return load_tool('deployment', 'export_onnx.py')


def _yolo_config(deploy_config: str, folder, data_root: str) -> str:
    """The tiny config with a YOLODataset test split at ``data_root``."""
    cfg = Config.fromfile(deploy_config)
    cfg.model.roi_head.bbox_head.num_classes = len(NAMES)
    for split in ('val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset = dict(
            type='YOLODataset', data_root=data_root,
            data_prefix=dict(img='images', ann='labels'), test_mode=True,
            pipeline=loader.dataset.pipeline)
    path = str(folder / 'tiny_faster-rcnn_yolo.py')
    cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def yolo_config(tmp_path_factory, deploy_config) -> str:
    """The tiny config on two YOLO images whose names file has 3 classes."""
    root = tmp_path_factory.mktemp('yolo')
    (root / 'images').mkdir()
    (root / 'labels').mkdir()
    rng = np.random.default_rng(0)
    for name in ('a', 'b'):
        cv2.imwrite(str(root / 'images' / f'{name}.png'),
                    rng.integers(0, 255, (64, 96, 3), np.uint8))
        (root / 'labels' / f'{name}.txt').write_text('2 0.5 0.5 0.4 0.3\n')
    (root / 'obj.names').write_text('\n'.join(NAMES) + '\n')
    return _yolo_config(deploy_config, root, str(root) + '/')


def _checkpoint(config: str, path: str) -> str:
    """A checkpoint of ``config``'s model recording the class names, as a
    trained one does."""
    torch.manual_seed(0)
    model = Predictor(config, None, 'cpu').model
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=tuple(NAMES)))),
               path)
    return path


def test_classes_come_from_the_names_file(yolo_config):
    # The lazily built dataset has METAINFO classes=(): []
    assert Predictor(yolo_config, None, 'cpu').classes == NAMES


def test_onnx_backend_loads_an_export_with_recorded_names(
        yolo_config, tmp_path, cell_images):
    # A checkpoint records the names; OnnxPredictor (no checkpoint) took
    # [] from the config and refused: "export the ONNX file again".
    torch_pred = Predictor(
        yolo_config, _checkpoint(yolo_config, str(tmp_path / 'c.pth')))
    path = str(tmp_path / 'yolo.onnx')
    export_tiny(torch_pred, cell_images[0], path, dynamic=False)
    assert OnnxPredictor(yolo_config, path).classes == NAMES


def test_export_tool_without_the_dataset_files_says_so(
        tmp_path, deploy_config, yolo_config, cell_images, capsys):
    missing = str(tmp_path / 'no_such_yolo') + '/'
    config = _yolo_config(deploy_config, tmp_path, missing)
    image = str(tmp_path / 'check.png')
    cv2.imwrite(image, cell_images[0])
    tool = _export_tool()
    # Random weights: the names only the files give (was: an export that
    # recorded no class names).
    status = tool.main([config, 'none', '--out', str(tmp_path / 'a.onnx'),
                        '--check-images', image])
    err = capsys.readouterr().err
    assert status == 2
    assert 'tiny_faster-rcnn_yolo.py takes its class names' in err
    assert f'data_root {missing}' in err
    # Trained weights record them: the export records them too, and the
    # ONNX backend takes them from it, so serving needs no training data
    # (was: a traceback in the export's check).
    ckpt = _checkpoint(yolo_config, str(tmp_path / 'c.pth'))
    out = str(tmp_path / 'b.onnx')
    status = tool.main([config, ckpt, '--out', out, '--check-images', image])
    err = capsys.readouterr().err
    assert status == 0, err
    assert OnnxPredictor(config, out).classes == NAMES
