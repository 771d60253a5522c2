"""tools/run_steps.py: a sequence of incremental steps, end to end.

The BCCD 1+1+1 configs, shrunk, on four generated 64x48 BCCD-format
images, one training iteration per run.
"""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from projects.IncrementalDet.incremental_det.sequence import (
    Run,
    load_spec,
    plan_runs,
)
from projects.IncrementalDet.incremental_det.sequence_results import (
    forgetting_since_learned,
    format_table,
    write_json,
)

from conftest import REPO, shrink_model

TOOL = osp.join(REPO, 'projects', 'IncrementalDet', 'tools', 'run_steps.py')
PROJECT = osp.join('projects', 'IncrementalDet', 'configs',
                   'faster-rcnn_mobilenetv2_fpn-128_{}_8e_bccd-{}.py')
BASE = osp.join('configs', 'bccd_fewshot',
                'faster-rcnn_mobilenetv2_fpn-128_base-training_bccd.py')
STEP2 = PROJECT.format('all', '1-1-1-step2')
STEP3 = PROJECT.format('all', '1-1-1-step3')
LOWER2 = PROJECT.format('fine-tuning', '1-1-1-step2')
UPPER2 = PROJECT.format('joint-training', '1-1-1-step2')
SPEC = osp.join('projects', 'IncrementalDet', 'configs',
                'bccd-1-1-1_sequence.yml')


def _tool():
    spec = importlib.util.spec_from_file_location('run_steps', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_bccd(root: str, num: int = 4) -> None:
    """``num`` images, each with one RBC, one WBC and one platelet."""
    rng = np.random.default_rng(0)
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for i in range(num):
        img = np.full((48, 64, 3), 200, np.uint8)
        objects = ''
        for name, (x, y, r) in zip(('RBC', 'WBC', 'Platelets'),
                                   ((14, 14, 10), (44, 30, 12), (12, 38, 5))):
            x += int(rng.integers(-2, 3))
            cv2.circle(img, (x, y), r, (60 * len(objects) % 255, 40, 90), -1)
            objects += (f'<object><name>{name}</name><difficult>0'
                        f'</difficult><bndbox><xmin>{x - r}</xmin><ymin>'
                        f'{y - r}</ymin><xmax>{x + r}</xmax><ymax>{y + r}'
                        '</ymax></bndbox></object>')
        cv2.imwrite(osp.join(root, 'JPEGImages', f'im{i}.jpg'), img)
        with open(osp.join(root, 'Annotations', f'im{i}.xml'), 'w') as f:
            f.write('<annotation><size><width>64</width><height>48</height>'
                    f'<depth>3</depth></size>{objects}</annotation>')
    for split, ids in (('train', range(2)), ('test', range(2, num))):
        with open(osp.join(root, 'ImageSets/Main', f'{split}.txt'), 'w') as f:
            f.write(''.join(f'im{i}\n' for i in ids))


def _tiny(src: str, dst: str, data_root: str) -> str:
    """``src`` shrunk, on the generated data, one iteration, no val."""
    cfg = Config.fromfile(osp.join(REPO, src))
    incremental = 'teacher_ckpt' in cfg.model
    cfg.model = shrink_model(cfg.model)
    if incremental:  # the driver must set the teacher: no default works
        cfg.model.update(teacher_ckpt='no/such/teacher.pth',
                         allow_random_teacher=False)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        node = loader.dataset
        while 'dataset' in node:
            node = node.dataset
        node.data_root = data_root + '/'
        for t in node.pipeline:
            if t.type == 'Resize':
                t.scale = (64, 48)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1,
                         val_interval=100)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.dump(dst)
    return dst


def _spec(path: str, steps: list) -> str:
    with open(path, 'w') as f:
        json.dump(dict(steps=steps), f)
    return path


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('steps')
    data = str(root / 'bccd')
    _write_bccd(data)
    names = dict(base=BASE, step2=STEP2, lower2=LOWER2, upper2=UPPER2,
                 step3=STEP3)
    return dict(root=root, **{k: _tiny(v, str(root / f'{k}.py'), data)
                              for k, v in names.items()})


def _mtime(path: str) -> float:
    return os.stat(path).st_mtime_ns  # of the link's target


@pytest.mark.slow
def test_steps_chain_aggregate_and_resume(tiny):
    """1+1 with both bounds, then the same folder continued to 1+1+1."""
    tool, root = _tool(), tiny['root']
    work = str(root / 'work')
    two = [dict(name='step1', config=tiny['base'], classes=['RBC']),
           dict(name='step2', config=tiny['step2'], lower=tiny['lower2'],
                upper=tiny['upper2'])]
    out = tool.main([_spec(str(root / 'two.json'), two), '--work-dir', work,
                     '--bounds', '--seed', '3'])
    assert out['statuses'] == dict(step1='trained', step2='trained',
                                   step2_lower='trained',
                                   step2_upper='trained')
    rows = {(r['step'], r['variant']): r for r in out['rows']}
    ckpt1 = osp.join(work, 'step1', 'final.pth')
    # The chain: step 2 and its lower bound start from step 1's model.
    assert rows['step2', 'method']['teacher'] == ckpt1
    assert rows['step2', 'lower']['teacher'] == ckpt1
    assert rows['step2', 'upper']['teacher'] is None
    dumped = Config.fromfile(osp.join(work, 'step2', 'step2.py'))
    assert dumped.model.teacher_ckpt == ckpt1
    assert dumped.randomness.seed == 3
    ref = rows['step1', 'method']['metrics']['all_AP50']
    step2 = rows['step2', 'method']
    assert step2['reference_old_ap50'] == ref
    assert step2['old_classes'] == ['RBC'] and step2['new_classes'] == ['WBC']
    assert set(step2['metrics']) == {'old_AP50', 'new_AP50', 'all_AP50',
                                     'forgetting', 'AP50_RBC', 'AP50_WBC'}
    assert step2['metrics']['forgetting'] == pytest.approx(
        ref - step2['metrics']['old_AP50'], abs=1e-4)
    assert 'forgetting' not in rows['step2', 'upper']['metrics']
    assert rows['step1', 'method']['metrics']['old_AP50'] is None  # no old
    assert step2['train_time_s'] > 0 and step2['peak_rss_mib'] > 0
    table = open(osp.join(work, 'results.md')).read()
    assert '| step2 | lower: fine-tuning | RBC | WBC |' in table
    assert '| step | run | RBC | WBC |' in table  # the per-class table
    saved = json.load(open(osp.join(work, 'results.json')))
    assert saved['seed'] == 3 and len(saved['rows']) == 4
    for row in saved['rows'][1:3]:  # step 2 and its lower bound: one old
        assert row['forgetting_since_learned'] == pytest.approx(  # class
            row['metrics']['forgetting'], abs=1e-4)
    assert saved['rows'][3]['forgetting_since_learned'] is None  # upper

    # Continued to 1+1+1: the finished runs are skipped, step 3 learns
    # from step 2's checkpoint.
    stamps = {n: _mtime(osp.join(work, n, 'final.pth'))
              for n in ('step1', 'step2')}
    three = two + [dict(name='step3', config=tiny['step3'])]
    spec3 = _spec(str(root / 'three.json'), three)
    out = tool.main([spec3, '--work-dir', work, '--bounds', '--seed', '3'])
    assert out['statuses'] == dict(
        step1='skipped', step2='skipped', step2_lower='skipped',
        step2_upper='skipped', step3='trained')
    assert all(_mtime(osp.join(work, n, 'final.pth')) == t
               for n, t in stamps.items())
    step3 = out['rows'][-1]
    assert step3['teacher'] == osp.join(work, 'step2', 'final.pth')
    assert step3['old_classes'] == ['RBC', 'WBC']
    assert step3['reference_old_ap50'] == step2['metrics']['all_AP50']
    assert len(json.load(open(osp.join(work, 'results.json')))['rows']) == 5

    # A run trained but not tested is only tested; another seed is refused.
    os.remove(osp.join(work, 'step3', 'result.json'))
    stamp = _mtime(osp.join(work, 'step3', 'final.pth'))
    out = tool.main([spec3, '--work-dir', work, '--seed', '3'])
    assert out['statuses'] == dict(step1='skipped', step2='skipped',
                                   step3='tested')
    assert _mtime(osp.join(work, 'step3', 'final.pth')) == stamp
    assert out['rows'][-1]['train_time_s'] == step3['train_time_s']
    with pytest.raises(SystemExit, match='trained with seed 3, not --seed 0'):
        tool.main([spec3, '--work-dir', work])


def test_plan_of_the_bccd_1_1_1_sequence():
    """The shipped spec: the teachers the driver sets are the configs'
    default teacher_ckpt paths; the lower bound chains its own runs."""
    spec = load_spec(osp.join(REPO, SPEC))
    runs = plan_runs(spec, SPEC, spec['work_dir'], bounds=True)
    assert [r.name for r in runs] == [
        'step1', 'step2', 'step2_lower', 'step2_upper', 'step3',
        'step3_lower', 'step3_upper']
    for run in runs:
        model = Config.fromfile(osp.join(REPO, run.config)).model
        assert model.get('teacher_ckpt') == run.teacher, run.name
    by_name = {r.name: r for r in runs}
    assert by_name['step3_lower'].teacher_run is by_name['step2_lower']
    assert by_name['step3'].old_classes == ('RBC', 'WBC')
    assert [r.name for r in plan_runs(spec, SPEC, 'w')] == [
        'step1', 'step2', 'step3']


@pytest.mark.parametrize('steps,message', [
    ([dict(config=BASE), dict(config='no/such.py')],
     r'steps\[1\].config: config no/such.py does not exist'),
    ([dict(config=BASE), dict(config=STEP2), dict(config=STEP2)],
     r"steps\[2\]: the step adds \['WBC'\], but \['WBC'\] were added"),
    ([dict(config=BASE), dict(config=STEP3)],
     r"steps\[1\].config .*model.old_classes is \['RBC', 'WBC'\], but the "
     r"sequence needs \['RBC'\]"),
    ([dict(config=STEP2)], r'steps\[0\].config .*is an incremental step'),
    ([dict(config=BASE), dict(config=UPPER2)],
     r'steps\[1\].config .*has no teacher_ckpt'),
    ([dict(config=BASE), dict(config=STEP2, classes=['Platelets'])],
     r"steps\[1\].classes is \['Platelets'\], but its config adds"),
    ([dict(config=BASE, classes=['RBC', 'WBC'])],
     r'num_classes is 1, but after the step the model knows 2'),
    ([dict(config=BASE, upper=UPPER2)], r'the first step has no bounds'),
    ([dict(config=BASE), dict(config=PROJECT.format('all', '1-2'))], None),
    ([], r'steps must be a non-empty list'),
    ([dict(name='a/b', config=BASE)], r'steps\[0\].name'),
])
def test_bad_sequences_are_named(tmp_path, monkeypatch, steps, message):
    monkeypatch.chdir(REPO)
    tool = _tool()
    path = _spec(str(tmp_path / 'seq.json'), steps)
    argv = [path, '--bounds', '--dry-run', '--work-dir', str(tmp_path)]
    if message is None:  # 1+2 is a valid sequence
        assert len(tool.main(argv)['runs']) == 2
        return
    with pytest.raises(SystemExit, match=message):
        tool.main(argv)


def test_bad_specs_and_a_test_split_of_other_classes(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    tool = _tool()
    with pytest.raises(SystemExit, match='spec nope.yml does not exist'):
        tool.main(['nope.yml'])
    path = tmp_path / 'seq.json'
    path.write_text(json.dumps(dict(steps=[dict(config=BASE)], seed=1)))
    with pytest.raises(SystemExit, match=r"unknown keys \['seed'\]"):
        tool.main([str(path)])
    path.write_text(json.dumps(dict(steps=[dict(classes=['RBC'])])))
    with pytest.raises(SystemExit, match=r'steps\[0\] has no config'):
        tool.main([str(path)])
    # Step 2 evaluated on all three BCCD classes (it knows two).
    cfg = tmp_path / 'step2_all-classes.py'
    cfg.write_text(f"_base_ = '{osp.join(REPO, STEP2)}'\n"
                   'test_dataloader = dict(dataset=dict(_delete_=True, '
                   "type='BCCDDataset', data_root='bccd/', pipeline=[], "
                   "ann_file='ImageSets/Main/test.txt'))\n")
    _spec(str(path), [dict(config=BASE), dict(config=str(cfg))])
    with pytest.raises(SystemExit, match=r"evaluates the classes \['RBC', "
                       r"'WBC', 'Platelets'\], but after the step the model "
                       r"knows \['RBC', 'WBC'\]"):
        tool.main([str(path), '--dry-run'])


@pytest.mark.parametrize('path', [STEP2, STEP3, LOWER2, UPPER2])
def test_config_doctor_reads_the_classes_of_a_step(path):
    """NewClassDataset's classes are old + new, not its inner dataset's
    (all of BCCD): step 2 knows two classes, and the doctor said 3."""
    from rcnn_plugin.config_doctor import run_checks
    cfg = Config.fromfile(osp.join(REPO, path))
    assert run_checks(cfg, checks=['num_classes'],
                      build_datasets=False) == []
    cfg.model.roi_head.bbox_head.num_classes += 1
    found = run_checks(cfg, checks=['num_classes'], build_datasets=False)
    assert [f.key for f in found] == ['model.roi_head.bbox_head.num_classes']


def test_table_marks_missing_values():
    row = dict(step='s1', variant='method', old_classes=[],
               new_classes=['RBC'], metrics=dict(old_AP50=None, new_AP50=0.5,
                                                 all_AP50=0.5),
               train_time_s=12.4, peak_rss_mib=100.0, peak_gpu_mib=None)
    table = format_table([row], 't')
    assert '| s1 | method | - | RBC | - | 50.0 | 50.0 | - | - | 12 | ' \
        '100 RSS |' in table
    # The per-class table: no AP50_RBC in the metrics, so '-'.
    assert '| step | run | RBC |\n|---|---|---|\n| s1 | method | - |' in table


def test_forgetting_since_learned_spans_the_chain(tmp_path):
    """Per old class, the best AP50 earlier in the chain minus now,
    averaged; the metric's own forgetting counts the last step only."""
    aps = dict(step1=dict(RBC=0.9), step2=dict(RBC=0.8, WBC=0.95),
               step3=dict(RBC=0.85, WBC=0.97, Platelets=0.6),
               step4=dict(RBC=0.7, WBC=0.9, Platelets=0.5, X=0.5))
    runs, teacher, seen = {}, None, ()
    for name, ap in aps.items():
        new = tuple(c for c in ap if c not in seen)
        run = Run(name, 'method', 'c.py', seen, new, str(tmp_path / name),
                  teacher)
        os.makedirs(run.run_dir)
        write_json(run.result_file, dict(metrics={
            f'AP50_{c}': v for c, v in ap.items()}))
        runs[name], teacher, seen = run, run, seen + new
    assert forgetting_since_learned(runs['step1']) is None  # no teacher
    assert forgetting_since_learned(runs['step2']) == pytest.approx(0.1)
    # RBC: 0.9 (step 1) - 0.85; WBC: 0.95 - 0.97.
    assert forgetting_since_learned(runs['step3']) == pytest.approx(0.015)
    # RBC 0.9 - 0.7, WBC at its best (step 3, not when learned) 0.97 - 0.9,
    # Platelets 0.6 - 0.5. The last step alone would say
    # mean(0.85, 0.97, 0.6) - mean(0.7, 0.9, 0.5) = 0.107.
    assert forgetting_since_learned(runs['step4']) == pytest.approx(
        (0.2 + 0.07 + 0.1) / 3)
    os.remove(runs['step1'].result_file)  # only what was measured counts
    assert forgetting_since_learned(runs['step3']) == pytest.approx(
        ((0.8 - 0.85) + (0.95 - 0.97)) / 2)
    upper = Run('step3', 'upper', 'c.py', seen[:2], seen[2:3],
                str(tmp_path / 'up'))
    assert forgetting_since_learned(upper) is None
