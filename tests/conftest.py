import contextlib
import copy
import logging
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# mmdet's projects/ import as ``projects.<Name>.<package>`` from the repo
# root (their configs' custom_imports, tests/test_projects/).
if REPO not in sys.path:
    sys.path.insert(0, REPO)
BCCD_ROOT = osp.join(REPO, '..', 'shared', 'datasets', 'bccd')


def bccd_or_skip() -> str:
    """Path of the real BCCD dataset, or skip the test with the reason."""
    if not osp.isdir(osp.join(BCCD_ROOT, 'Annotations')):
        pytest.skip(f'real BCCD data not found at {osp.abspath(BCCD_ROOT)} '
                    '(../shared/datasets/bccd is absent)')
    return BCCD_ROOT


BCD_ROOT = osp.join(REPO, '..', 'shared', 'datasets', 'bcd')


def bcd_or_skip() -> str:
    """Path of the real bcd dataset (the domain-shift target), or skip the
    test with the reason."""
    if not osp.isfile(osp.join(BCD_ROOT, 'annotations.csv')):
        pytest.skip(f'real bcd data not found at {osp.abspath(BCD_ROOT)} '
                    '(../shared/datasets/bcd is absent)')
    return BCD_ROOT


@pytest.fixture(scope='session')
def synthetic_cells(tmp_path_factory):
    """A tiny synthetic smear dataset (COCO format): 8 train, 4 val."""
    from rcnn_plugin.datasets import make_synthetic_cells
    root = str(tmp_path_factory.mktemp('synthetic_cells'))
    make_synthetic_cells(root, num_train=8, num_val=4, img_size=96, seed=1)
    return root


def shrink_model(model_cfg: dict) -> dict:
    """Shrink a two-stage detector config for fast CPU tests.

    Narrow MobileNetV2 (no weights), 16-channel FPN, small heads, few
    proposals. The wiring (strides, class counts) is kept. An incremental
    step's teacher checkpoint is replaced by a random teacher.
    """
    cfg = copy.deepcopy(model_cfg)
    if 'teacher_ckpt' in cfg:  # an incremental step (projects/)
        # No trained previous model in tests: a random teacher, which the
        # detector allows only with this explicit flag.
        cfg.update(teacher_ckpt=None, allow_random_teacher=True)
    ch = 16
    if cfg['backbone']['type'] == 'ResNet':  # ResNet-18 at 1/8 width
        cfg['backbone'].update(depth=18, base_channels=8, stem_channels=8,
                               init_cfg=None)
        cfg['neck'].update(in_channels=[8, 16, 32, 64], out_channels=ch)
    elif cfg['backbone']['type'] == 'TorchvisionBackbone':  # as it is
        cfg['neck'].update(out_channels=ch)
    else:
        cfg['backbone'].update(widen_factor=0.25, init_cfg=None)
        cfg['neck'].update(in_channels=[8, 8, 24, 1280], out_channels=ch)
    roi = cfg['roi_head']
    roi['bbox_roi_extractor']['out_channels'] = ch
    roi['bbox_head'].update(in_channels=ch, fc_out_channels=32)
    if 'conv_out_channels' in roi['bbox_head']:  # Shared4Conv1FCBBoxHead
        roi['bbox_head']['conv_out_channels'] = ch
    if roi.get('mask_head') is not None:  # Mask R-CNN
        roi['mask_roi_extractor']['out_channels'] = ch
        roi['mask_head'].update(in_channels=ch, conv_out_channels=ch)
    cfg['train_cfg']['rcnn']['sampler']['num'] = 32
    if cfg.get('rpn_head') is not None:  # Fast R-CNN has none
        cfg['rpn_head'].update(in_channels=ch, feat_channels=ch)
        cfg['train_cfg']['rpn_proposal'].update(nms_pre=200, max_per_img=50)
        cfg['test_cfg']['rpn'].update(nms_pre=200, max_per_img=50)
    return cfg


@pytest.fixture
def served_ops():
    """mmcv.ops wrappers call rcnn_plugin's served kernels in the test, also
    where a compiled mmcv._ext is installed (which otherwise wins)."""
    from rcnn_plugin.ops import compiled_ext_available, load_served, use_ext
    if not compiled_ext_available():
        yield
        return
    with use_ext(load_served()):
        yield


@pytest.fixture(autouse=True, scope='session')
def _single_thread():
    # Tests run tiny models; extra threads only add contention on CI.
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


TINY_CONFIG = """
_base_ = '{base}'
custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)
data_root = '{data_root}/'
model = dict(
    backbone=dict(widen_factor=0.25, init_cfg=None),
    neck=dict(in_channels=[8, 8, 24, 1280], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=dict(in_channels=16, fc_out_channels=32)))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
optim_wrapper = dict(optimizer=dict(lr=0.001))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""


@pytest.fixture
def tiny_config(tmp_path, synthetic_cells):
    """A shrunk copy of the demo config on the tiny synthetic dataset."""
    base = osp.join(REPO, 'configs', 'demo',
                    'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
    path = tmp_path / 'tiny_faster-rcnn.py'
    path.write_text(TINY_CONFIG.format(base=base, data_root=synthetic_cells))
    return str(path)


def wrap_split(config: str, split: str, path: str) -> str:
    """Write ``config`` with its ``split`` dataset inside a ConcatDataset
    (a wrapper with no pipeline and no get_subset) to ``path``."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    loader = cfg[f'{split}_dataloader']
    loader.dataset = dict(type='ConcatDataset', datasets=[loader.dataset])
    cfg.dump(path)
    return path


@contextlib.contextmanager
def logged_messages(level=logging.INFO):
    """Collect the messages the current MMLogger logs at ``level`` or above
    inside the block (a list, filled as they come)."""
    from mmengine.logging import MMLogger
    messages = []
    handler = logging.Handler(level=level)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def load_tool(*parts: str):
    """A script under ``tools/`` imported as a module (``load_tool(
    'deployment', 'export_onnx.py')``), to call its ``main`` in-process."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_tool_' + osp.splitext(parts[-1])[0],
        osp.join(REPO, 'tools', *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(args, cwd=REPO, timeout=600, env=None):
    """Run a command like a user would; fail with its output if it fails."""
    import subprocess
    import sys
    full_env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    full_env.update(env or {})
    if args[0].endswith('.py'):
        args = [sys.executable] + list(args)
    proc = subprocess.run(
        args, cwd=cwd, env=full_env, timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def export_tiny(predictor, image, path: str, dynamic: bool) -> dict:
    """Deployment tests: export ``predictor``'s model, ``image`` as sample."""
    from rcnn_plugin.apis import capture_input
    from rcnn_plugin.deployment import export_onnx
    sample = capture_input(predictor, image)
    return export_onnx(predictor.model, predictor.inferencer.cfg, path,
                       predictor.classes, sample, dynamic=dynamic)


# Deployment tests (tests/test_deployment): a tiny Faster R-CNN and its
# ONNX export, built once per session.
@pytest.fixture(scope='session')
def deploy_config(tmp_path_factory, synthetic_cells) -> str:
    """The shrunk demo config on the tiny synthetic dataset."""
    base = osp.join(REPO, 'configs', 'demo',
                    'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
    path = tmp_path_factory.mktemp('deploy') / 'tiny_faster-rcnn.py'
    path.write_text(TINY_CONFIG.format(base=base, data_root=synthetic_cells))
    return str(path)


@pytest.fixture(scope='session')
def cell_images(synthetic_cells) -> list:
    """Two synthetic validation images (BGR, 96x96)."""
    from rcnn_plugin.apis import collect_images, read_image
    paths = collect_images(osp.join(synthetic_cells, 'val'))[:2]
    return [read_image(p) for p in paths]


@pytest.fixture(scope='session')
def torch_predictor(deploy_config):
    """The PyTorch predictor (random weights, fixed seed)."""
    import torch

    from rcnn_plugin.apis import Predictor
    torch.manual_seed(0)
    return Predictor(deploy_config, None, 'cpu')


@pytest.fixture(scope='session')
def static_onnx(tmp_path_factory, torch_predictor, cell_images) -> str:
    """A static-shape export of the tiny model (graph ``features`` file)."""
    path = str(tmp_path_factory.mktemp('onnx') / 'tiny.onnx')
    export_tiny(torch_predictor, cell_images[0], path, dynamic=False)
    return path


@pytest.fixture(scope='session')
def ort_predictor(deploy_config, static_onnx):
    """ONNX Runtime predictor of the static export (shared: building the
    mmdet side costs seconds)."""
    from rcnn_plugin.apis import OnnxPredictor
    return OnnxPredictor(deploy_config, static_onnx)
