"""Every config loads, builds on a shrunk model and runs loss + predict."""
import ast
import copy
import glob
import math
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config

from conftest import REPO, shrink_model

# mmdet's projects/ convention: projects/<Name>/configs/*.py, importing
# the project's package as ``projects.<Name>.<package>`` from the repo root
# (on sys.path: conftest).
CONFIGS = sorted(
    p for pattern in (('configs', '**', '*.py'),
                      ('projects', '*', 'configs', '**', '*.py'))
    for p in glob.glob(osp.join(REPO, *pattern), recursive=True)
    if '/_base_/' not in p)


def _is_project(path: str) -> bool:
    return osp.relpath(path, REPO).startswith('projects' + osp.sep)


def _root_bases(path: str) -> set:
    """Follow local ``_base_`` links to the roots of the inheritance graph.

    ``_base_`` is one path or a list (mmdet's models / datasets / schedules
    / runtime composition). A root is an ``mmdet::`` base or a local file
    without a ``_base_``.
    """
    tree = ast.parse(open(path).read(), path)
    bases = [
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(t, 'id', None) == '_base_' for t in node.targets)
    ]
    if not bases:
        return {osp.relpath(path, REPO)}
    bases = bases[-1] if isinstance(bases[-1], list) else bases
    roots = set()
    for base in bases:
        if base.startswith('mmdet::'):
            roots.add(base)
        else:
            local = osp.normpath(osp.join(osp.dirname(path), base))
            assert osp.isfile(local), f'{path}: no base {base}'
            roots |= _root_bases(local)
    return roots


def add_demo_proposals(packed: dict, counts: list) -> None:
    """Give each packed sample ``counts[i]`` random proposals (Fast R-CNN).

    The second image gets none by default: an empty proposal list is a
    normal input.
    """
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(0)
    for sample, count in zip(packed['data_samples'], counts):
        h, w = sample.img_shape
        xy = torch.rand(count, 2, generator=gen) * torch.tensor([w, h]) / 2
        wh = torch.rand(count, 2, generator=gen) * torch.tensor([w, h]) / 2
        sample.proposals = InstanceData(
            bboxes=torch.cat([xy, xy + wh + 1], dim=1),
            scores=torch.rand(count, generator=gen))


def test_configs_found():
    # both roots: a broken projects glob would test none of their configs
    assert sum(not _is_project(p) for p in CONFIGS) >= 40
    assert sum(_is_project(p) for p in CONFIGS) >= 30


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_conventions(path):
    text = open(path).read()
    if _is_project(path):  # rcnn_plugin first, then the project package
        assert re.search(
            r"custom_imports = dict\(\s*imports=\['rcnn_plugin', "
            r"'projects\.[\w.]+'\],\s*allow_failed_imports=False\)",
            text), path
    else:
        assert ("custom_imports = dict(imports=['rcnn_plugin'], "
                'allow_failed_imports=False)') in text
    # Inherits from mmdet's own configs; local roots are configs/_base_/
    # files (dataset bases that state a whole dataloader, as mmdet's do).
    roots = _root_bases(path)
    assert any(r.startswith('mmdet::') for r in roots), roots
    assert all(r.startswith('mmdet::') or r.startswith('configs/_base_/')
               for r in roots), roots
    name = osp.basename(path)
    assert re.fullmatch(r'[a-z0-9.-]+(_[a-z0-9.-]+){2,}\.py', name), name


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_loss_and_predict(path):
    register_all_modules()
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    _loss_and_predict(cfg)


def _loss_and_predict(cfg: Config) -> None:
    det = cfg.model.get('detector', cfg.model)  # teacher-student wrappers
    num_classes = det.roi_head.bbox_head.num_classes
    model = MODELS.build(_shrink(cfg.model))
    model.init_weights()
    # One image with boxes and one with none: both are normal inputs.
    packed = demo_mm_inputs(
        batch_size=2, image_shapes=[(3, 96, 128), (3, 96, 128)],
        num_items=[3, 0], num_classes=max(num_classes, 2),
        with_mask=det.roi_head.get('mask_head') is not None)
    for sample in packed['data_samples']:  # demo labels are 1..C-1
        sample.gt_instances.labels.clamp_(max=num_classes - 1)
    if det.get('rpn_head') is None:
        add_demo_proposals(packed, counts=[20, 0])
    model.train()
    data = _train_batch(model, packed, cfg)
    losses = model(**data, mode='loss')
    total = sum(v.sum() for k, v in losses.items()
                if 'loss' in k and isinstance(v, torch.Tensor))
    assert math.isfinite(total.item())
    total.backward()
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(packed, False)
        results = model(**data, mode='predict')
    assert len(results) == 2
    for res in results:
        pred = res.pred_instances
        assert pred.bboxes.shape[1] == 4
        assert len(pred.labels) == len(pred.scores) == len(pred.bboxes)
        if len(pred.labels):
            assert int(pred.labels.max()) < num_classes


def _shrink(model_cfg: dict) -> dict:
    """shrink_model, also inside a teacher-student wrapper (``detector``)."""
    if 'detector' in model_cfg:
        return dict(model_cfg, detector=shrink_model(model_cfg['detector']))
    return shrink_model(model_cfg)


def _train_batch(model, packed: dict, cfg: Config) -> dict:
    """Preprocessed training data. A multi-branch config (domain adaptation
    or semi-supervised, ``branch_field``) gets the images in every branch,
    with boxes only in the first (labelled) one, identity homographies."""
    if not cfg.get('branch_field'):
        return model.data_preprocessor(packed, True)
    inputs, samples = {}, {}
    for i, branch in enumerate(cfg.branch_field):
        branch_samples = copy.deepcopy(packed['data_samples'])
        for sample in branch_samples:
            sample.set_metainfo(
                dict(homography_matrix=np.eye(3, dtype=np.float32)))
            if i:
                sample.gt_instances = sample.gt_instances[:0]
        data = model.data_preprocessor.data_preprocessor(
            dict(inputs=packed['inputs'], data_samples=branch_samples), True)
        inputs[branch], samples[branch] = data['inputs'], data['data_samples']
    return dict(inputs=inputs, data_samples=samples)


CONFIG_DIRS = sorted({osp.dirname(p) for p in CONFIGS})


@pytest.mark.parametrize('folder', CONFIG_DIRS,
                         ids=[osp.relpath(p, REPO) for p in CONFIG_DIRS])
def test_config_folder_has_readme_and_metafile(folder):
    import yaml
    # A project's README sits beside its configs/ folder (mmdet's layout).
    readme_dir = osp.dirname(folder) if _is_project(folder) else folder
    readme = open(osp.join(readme_dir, 'README.md')).read()
    meta = yaml.safe_load(open(osp.join(folder, 'metafile.yml')))
    configs = {osp.basename(p) for p in CONFIGS if osp.dirname(p) == folder}
    listed = set()
    for model in meta['Models']:
        cfg = osp.basename(model['Config'])
        assert osp.splitext(cfg)[0] == model['Name']
        assert osp.isfile(osp.join(REPO, model['Config'])), model['Config']
        listed.add(cfg)
    assert listed == configs
    for name in configs:
        assert osp.splitext(name)[0] in readme, f'{name} has no README row'


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_feature_strides_match_anchors_and_roi_extractor(path):
    """A backbone wired at the wrong stride trains silently to ~0 mAP."""
    from rcnn_plugin.config_doctor import run_checks
    register_all_modules()
    cfg = Config.fromfile(path)
    model = MODELS.build(_shrink(cfg.model))
    assert run_checks(cfg, checks=['feature_strides'], model=model) == []


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_doctor_hook_enabled(path):
    """Every config runs the config doctor before training."""
    cfg = Config.fromfile(path)
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') == 'ConfigDoctorHook']
    assert len(hooks) == 1, (
        f'{path}: add dict(type="ConfigDoctorHook") to custom_hooks')
    assert hooks[0].get('enabled', True), f'{path}: ConfigDoctorHook is off'


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_training_health_guard_and_seed(path):
    """Every config guards its training and is seeded: the first demo
    recipe diverged unseeded on a fresh clone and nothing warned."""
    cfg = Config.fromfile(path)
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') == 'TrainingHealthHook']
    assert len(hooks) == 1, (
        f'{path}: add dict(type="TrainingHealthHook") to custom_hooks')
    assert hooks[0].get('nonfinite', 'stop') != 'warn', (
        f'{path}: a non-finite loss must stop or skip, not only warn')
    seed = (cfg.get('randomness') or {}).get('seed')
    assert isinstance(seed, int), f'{path}: set randomness=dict(seed=...)'


OVERLAYS = sorted(glob.glob(osp.join(REPO, 'configs', '_base_', 'hooks',
                                     '*.py')))
OVERLAY_TARGETS = [osp.join(REPO, 'configs', p) for p in (
    'demo/faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py',
    'balloon/mask-rcnn_mobilenetv2_fpn-128_12e_balloon.py')]


@pytest.mark.parametrize('path', OVERLAY_TARGETS,
                         ids=[osp.basename(p) for p in OVERLAY_TARGETS])
@pytest.mark.parametrize('overlay', OVERLAYS,
                         ids=[osp.basename(p) for p in OVERLAYS])
def test_hook_overlay_builds_and_runs(overlay, path):
    """Each configs/_base_/hooks/ overlay over a Faster and a Mask R-CNN
    config: its hooks build, the guards stay, loss and predict run."""
    import copy

    from mmdet.registry import HOOKS

    from rcnn_plugin.utils import apply_overlays
    register_all_modules()
    cfg = apply_overlays(Config.fromfile(path), [overlay])
    types = [h['type'] for h in cfg.custom_hooks]
    assert types[:2] == ['ConfigDoctorHook', 'TrainingHealthHook'], types
    for hook in list(cfg.custom_hooks) + [cfg.default_hooks.checkpoint]:
        built = HOOKS.build(copy.deepcopy(hook))
        assert type(built).__name__ == hook['type'].split('.')[-1]
    _loss_and_predict(cfg)


def _counted_models():
    """(config, count) for each metafile model that states its trainable
    parameters (the PEFT tables quote them)."""
    import yaml
    found = []
    for meta in sorted(glob.glob(osp.join(REPO, 'configs', '*',
                                          'metafile.yml'))):
        for model in yaml.safe_load(open(meta))['Models']:
            count = model.get('Metadata', {}).get('Trainable Parameters')
            if count is not None:
                found.append((model['Config'], count))
    return found


@pytest.mark.parametrize('config,count', _counted_models(),
                         ids=[c for c, _ in _counted_models()])
def test_metafile_trainable_parameters_match_the_model(config, count):
    """A stated trainable count is the built model's, after train()
    (which applies frozen_stages), on the full-size model."""
    register_all_modules()
    model = MODELS.build(Config.fromfile(osp.join(REPO, config)).model)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == count, f'{config}: metafile says {count}, the ' \
        f'model trains {trainable}'
