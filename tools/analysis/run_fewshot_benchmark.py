"""Run the BCCD few-shot, few-label and rare-class benchmarks (AP50).

Few-shot grid (TFA steps 1-3; RBC base, WBC and Platelets novel)::

    python tools/analysis/run_fewshot_benchmark.py fewshot \\
        --work-dir work_dirs/bccd_fewshot --shots 1 5 10 --seeds 0 1 2

``--methods cos-proto`` adds the cosine head with prototype-initialised
novel rows (one surgery per K and seed, from that run's split).

Few labels (issue 23): full fine-tuning against PEFT configs trained on a
seeded, class-stratified 10 % and 25 % of BCCD's training images::

    python tools/analysis/run_fewshot_benchmark.py few-label \\
        --work-dir work_dirs/bccd_few_label --fractions 0.1 0.25 \\
        --seeds 0 1 2

Each run's config is written to ``<run>/few_label.py`` first: the given
config with its training set wrapped in ``SeededSplitDataset`` (the subset,
drawn by the run's seed and kept in ``<work-dir>/splits``, so configs of
one fraction and seed with the same training set train on the same
images) inside mmengine's
``RepeatDataset`` (``times`` = round(1 / fraction), so the schedule keeps
about as many iterations as on the full set).

ClassBalancedPosSampler against mmdet's RandomSampler (same schedule)::

    python tools/analysis/run_fewshot_benchmark.py imbalance \\
        --work-dir work_dirs/bccd_imbalance --seeds 0 1 2

Every step is a ``tools/train.py`` / ``tools/test.py`` /
``fewshot_surgery.py`` command, printed before it runs (``--dry-run``
prints them only). A finished run leaves ``ap50.json`` in its folder and is
skipped when the driver is started again, but only if it was made from the
same resolved config, options and ``load_from`` checkpoint (their hash is
kept in ``run.json``); otherwise the driver stops and names the folder.
A run cut after a checkpoint continues from it (``--resume``) when it was
started from the same (``started.json``); otherwise the driver stops and
names the folder (resuming it would mix the two).
Surgery checkpoints are keyed to the base checkpoint in the same way.
AP50 is VOC-style (area under the PR curve, IoU 0.5, as
``VOCMetric(eval_mode='area')``) per class on the BCCD test split,
computed from ``tools/test.py --out`` predictions; the mean and sample std
over seeds go to ``summary.md`` in the work dir.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FEWSHOT = 'configs/bccd_fewshot/faster-rcnn_mobilenetv2_fpn-128_'
BASE_CFG = FEWSHOT + 'base-training_bccd.py'
METHODS = {  # name: (config pattern, surgery flags, surgery output)
    'cos': (FEWSHOT + 'cos_fine-tuning_{k}shot_bccd.py', ['--cosine'],
            'surgery_cos_random.pth'),
    'full': (FEWSHOT + 'full-fine-tuning_{k}shot_bccd.py', [],
             'surgery_random.pth'),
    # Novel rows from the prototypes of each run's own K-shot split.
    'cos-proto': (FEWSHOT + 'cos_fine-tuning_{k}shot_bccd.py', ['--cosine'],
                  None),
}
IMBALANCE = {
    'RandomSampler': 'configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py',
    'ClassBalancedPosSampler': 'configs/bccd_imbalance/'
    'faster-rcnn_mobilenetv2_fpn-128_cb-pos-sampler_8e_bccd.py',
}
CLASSES = ('RBC', 'WBC', 'Platelets')
FEW_LABEL = [  # full fine-tuning, then the PEFT configs to compare with it
    'configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py',
    'configs/bccd_peft/faster-rcnn_mobilenetv2_fpn-128_lora-r4-fpn_8e_bccd.py',
]
# Fine-tuning runs are scored on the test split only: their end-of-training
# pass over the val split (~1 min of CPU each) is skipped.
NO_VAL = ['val_dataloader=None', 'val_cfg=None', 'val_evaluator=None']


def run(cmd: List[str], dry: bool) -> None:
    """Print a command, then run it from the repository root."""
    print('$', ' '.join(cmd), flush=True)
    if not dry:
        subprocess.run([sys.executable] + cmd, cwd=REPO, check=True)


def per_class_ap50(config: str, preds_pkl: str) -> Dict[str, float]:
    """AP50 per class of ``tools/test.py --out`` predictions, as mmdet's
    ``VOCMetric(eval_mode='area')`` computes it (its legacy +1 box size,
    ignored boxes neither hits nor misses).

    Args:
        config (str): The config whose ``test_dataloader.dataset`` holds
            the ground truth.
        preds_pkl (str): Pickle written by ``tools/test.py --out``.

    Returns:
        dict[str, float]: Class name -> AP50.
    """
    import numpy as np
    from mmdet.evaluation.functional import eval_map
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.fileio import load
    from mmengine.registry import init_default_scope

    import rcnn_plugin  # noqa: F401
    cfg = Config.fromfile(osp.join(REPO, config))
    init_default_scope('mmdet')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    classes = dataset.metainfo['classes']
    def arrays(insts):
        return (np.array([x['bbox'] for x in insts],
                         dtype=np.float32).reshape(-1, 4),
                np.array([x['bbox_label'] for x in insts], dtype=np.int64))

    gts = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        insts = info['instances']
        bboxes, labels = arrays([x for x in insts
                                 if not x.get('ignore_flag')])
        ignored, ignored_labels = arrays([x for x in insts
                                          if x.get('ignore_flag')])
        gts[info['img_path']] = dict(
            bboxes=bboxes, labels=labels, bboxes_ignore=ignored,
            labels_ignore=ignored_labels)
    dets, anns = [], []
    for pred in load(preds_pkl):
        inst = pred['pred_instances']
        boxes = np.concatenate([np.asarray(inst['bboxes']),
                                np.asarray(inst['scores'])[:, None]], 1)
        labels = np.asarray(inst['labels'])
        dets.append([boxes[labels == c] for c in range(len(classes))])
        anns.append(gts[pred['img_path']])
    if len(anns) != len(gts):
        raise ValueError(f'{preds_pkl}: {len(anns)} predictions for '
                         f'{len(gts)} test images')
    _, results = eval_map(dets, anns, iou_thr=0.5, logger='silent',
                          eval_mode='area', use_legacy_coordinate=True)
    return {name: float(r['ap']) for name, r in zip(classes, results)}


def train_and_test(config: str, work_dir: str, options: List[str],
                   ckpt_name: str, dry: bool) -> Dict[str, float]:
    """Train, test and score one run, unless it was done before from the
    same config, options and ``load_from`` checkpoint. A run cut before its
    score resumes from its newest checkpoint if it was started from the
    same (``started.json``); one started from another is refused."""
    from rcnn_plugin.utils.run_record import (
        begin_run,
        config_key,
        reuse_run,
        write_run_record,
    )
    out = osp.join(REPO, work_dir, 'ap50.json')
    key = config_key(config, options, REPO) if osp.isfile(out) or not dry \
        else ''
    if reuse_run(osp.join(REPO, work_dir), out, key):
        return json.load(open(out))
    opts = ['--cfg-options'] + options if options else []
    started = osp.join(REPO, work_dir, 'started.json')
    if not dry:
        if begin_run(osp.join(REPO, work_dir), key, started, config=config,
                     options=options):
            opts.append('--resume')  # train.py takes it after the options
    run(['tools/train.py', config, '--work-dir', work_dir] + opts, dry)
    preds = osp.join(work_dir, 'preds.pkl')
    run(['tools/test.py', config, osp.join(work_dir, ckpt_name),
         '--work-dir', work_dir, '--out', preds], dry)
    if dry:
        return {}
    ap = per_class_ap50(config, osp.join(REPO, preds))
    write_run_record(osp.join(REPO, work_dir, 'run.json'), key,
                     config=config, options=options)
    json.dump(ap, open(out, 'w'), indent=1)
    return ap


def summarize(rows: Dict[str, List[Dict[str, float]]], columns: List[str],
              title: str) -> str:
    """Markdown table of mean +- std (over seeds) per row and column."""
    lines = [f'## {title}', '', '| run | seeds | ' + ' | '.join(columns)
             + ' |', '|---|---|' + '---|' * len(columns)]
    for name, runs in rows.items():
        cells = []
        for col in columns:
            vals = [r[col] * 100 for r in runs if col in r]
            if len(vals) > 1:  # one run has no spread to show
                cells.append(f'{statistics.mean(vals):.1f} +- '
                             f'{statistics.stdev(vals):.1f}')
            else:
                cells.append(f'{vals[0]:.1f}' if vals else '-')
        lines.append(f'| {name} | {len(runs)} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def surgery_cmd(base_ckpt: str, out: str, flags: List[str],
                options: List[str], dry: bool) -> None:
    """Run fewshot_surgery.py unless ``out`` was made before from the same
    base checkpoint, flags and options (kept in ``out.json``)."""
    init = [] if '--init' in flags else ['--init', 'random']
    opts = ['--cfg-options'] + options if options else []
    cmd = ['tools/model_converters/fewshot_surgery.py', base_ckpt, out,
           '--classes', *CLASSES] + init + flags + opts
    from rcnn_plugin.utils.run_record import (
        config_key,
        file_sha256,
        reuse_run,
        write_run_record,
    )
    path = osp.join(REPO, out)
    if dry and not osp.isfile(path):
        run(cmd, dry)
        return
    made_from = file_sha256(osp.join(REPO, base_ckpt)) + ' '.join(cmd)
    if '--config' in flags:  # prototypes: also what that config resolves to
        made_from += config_key(flags[flags.index('--config') + 1], options,
                                REPO)
    key = hashlib.sha1(made_from.encode()).hexdigest()
    record = path + '.json'
    if reuse_run(path, path, key, record):
        return
    run(cmd, dry)
    if not dry:
        write_run_record(record, key, command=cmd)


def fewshot(args) -> str:
    base_dir = osp.join(args.work_dir, 'base')
    base_ckpt = osp.join(base_dir, 'epoch_8.pth')
    # RBC AP50 of the base model, before any fine-tuning.
    base_ap = train_and_test(BASE_CFG, base_dir, [], 'epoch_8.pth',
                             args.dry_run)
    rows = {'base training (RBC only)': [base_ap] if base_ap else []}
    for method in args.methods:
        pattern, flags, shared = METHODS[method]
        if shared:
            surgery = osp.join(base_dir, shared)
            surgery_cmd(base_ckpt, surgery, flags, [], args.dry_run)
        for k in args.shots:
            cfg = pattern.format(k=k)
            max_iters = {1: 160, 5: 320, 10: 640}.get(k)
            if max_iters is None:
                raise ValueError(f'no config for K={k}: use 1, 5 or 10')
            runs = []
            for seed in args.seeds:
                work = osp.join(args.work_dir, f'{method}_{k}shot_seed{seed}')
                data = [f'train_dataloader.dataset.seed={seed}',
                        'train_dataloader.dataset.split_file=' + osp.join(
                            args.work_dir, 'splits',
                            '{shots}shot_seed{seed}.json')]
                if not shared:
                    surgery = osp.join(work, 'surgery.pth')
                    surgery_cmd(base_ckpt, surgery, flags + [
                        '--init', 'prototype', '--config', cfg], data,
                        args.dry_run)
                opts = [f'load_from={surgery}', f'randomness.seed={seed}']
                ap = train_and_test(cfg, work, opts + data + NO_VAL,
                                    f'iter_{max_iters}.pth', args.dry_run)
                if ap:
                    ap['novel'] = (ap['WBC'] + ap['Platelets']) / 2
                    runs.append(ap)
            rows[f'{method}, K={k}'] = runs
    return summarize(rows, ['WBC', 'Platelets', 'novel', 'RBC'],
                     'BCCD few-shot: AP50 on the test split (novel: WBC, '
                     'Platelets; base: RBC)')


def few_label_config(config: str, fraction: float, seed: int,
                     split_root: str, out: str) -> str:
    """Write ``config`` with its training set cut to a seeded share.

    Args:
        config (str): The config (relative to the repository or absolute).
        fraction (float): Share of the training images kept, in (0, 1).
        seed (int): Seed of the draw.
        split_root (str): Folder of the drawn image lists: one subfolder
            per fraction, seed and training set (its config without the
            pipeline), so configs that train on the same data share it.
        out (str): Path of the written config.

    Returns:
        str: The last checkpoint's file name (``epoch_N.pth`` or
        ``iter_N.pth``).
    """
    from mmengine.config import Config

    from rcnn_plugin.datasets import update_inner_dataset_cfg
    if not 0 < fraction < 1:
        raise ValueError(f'--fractions must be in (0, 1), got {fraction}')
    cfg = Config.fromfile(osp.join(REPO, config))
    loop = cfg.train_cfg
    if loop.get('max_epochs'):
        last = f'epoch_{loop.max_epochs}.pth'
    elif loop.get('max_iters'):
        last = f'iter_{loop.max_iters}.pth'
    else:
        raise ValueError(f'{config}: train_cfg has neither max_epochs nor '
                         'max_iters')
    source = cfg.train_dataloader.dataset
    data = json.dumps(update_inner_dataset_cfg(source.to_dict(), pipeline=[]),
                      sort_keys=True, default=str)
    split_dir = osp.join(
        split_root, f'{fraction * 100:g}pct_seed{seed}_'
        f'{hashlib.sha1(data.encode()).hexdigest()[:8]}')
    # SeededSplitDataset's ``val`` part is the drawn ``fraction``.
    cfg.train_dataloader.dataset = dict(
        type='RepeatDataset',
        times=max(1, round(1 / fraction)),
        dataset=dict(
            type='SeededSplitDataset',
            dataset=source,
            split_dir=split_dir,
            part='val',
            fraction=fraction,
            seed=seed))
    os.makedirs(osp.dirname(osp.join(REPO, out)), exist_ok=True)
    cfg.dump(osp.join(REPO, out))
    return last


def few_label(args) -> str:
    rows = {}
    for config in args.configs:
        name = osp.splitext(osp.basename(config))[0]
        for fraction in args.fractions:
            pct = f'{fraction * 100:g}'
            runs = []
            for seed in args.seeds:
                work = osp.join(args.work_dir, f'{name}_{pct}pct_seed{seed}')
                derived = osp.join(work, 'few_label.py')
                last = few_label_config(config, fraction, seed,
                                        osp.join(args.work_dir, 'splits'),
                                        derived)
                ap = train_and_test(derived, work,
                                    [f'randomness.seed={seed}'] + NO_VAL,
                                    last, args.dry_run)
                if ap:
                    ap['mAP'] = statistics.mean(ap.values())
                    runs.append(ap)
            rows[f'{name}, {pct} %'] = runs
    columns = list(dict.fromkeys(k for r in rows.values() for a in r
                                 for k in a))
    return summarize(rows, columns,
                     'Few labels: AP50 on the test split')


def imbalance(args) -> str:
    rows = {}
    for name, cfg in IMBALANCE.items():
        runs = []
        for seed in args.seeds:
            work = osp.join(args.work_dir, f'{name}_seed{seed}')
            ap = train_and_test(cfg, work, [f'randomness.seed={seed}'],
                                'epoch_8.pth', args.dry_run)
            if ap:
                runs.append(ap)
        rows[name] = runs
    return summarize(rows, list(CLASSES),
                     'BCCD rare classes: AP50 on the test split')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('what', choices=['fewshot', 'imbalance', 'few-label'])
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--shots', type=int, nargs='+', default=[1, 5, 10])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', choices=sorted(METHODS),
                        default=['cos', 'full'])
    parser.add_argument('--fractions', type=float, nargs='+',
                        default=[0.1, 0.25],
                        help='few-label: shares of the training images')
    parser.add_argument('--configs', nargs='+', default=FEW_LABEL,
                        help='few-label: the configs to compare')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands only (few-label still '
                        'writes each run\'s config)')
    args = parser.parse_args(argv)
    # One spelling of the folder (it is part of each run's key).
    args.work_dir = osp.normpath(args.work_dir)
    bad = [f for f in args.fractions if not 0 < f < 1]
    if args.what == 'few-label' and bad:
        parser.error(f'--fractions must be in (0, 1), got {bad}')
    table = dict(fewshot=fewshot, imbalance=imbalance,
                 few_label=few_label)[args.what.replace('-', '_')](args)
    if not args.dry_run:
        path = osp.join(REPO, args.work_dir, 'summary.md')
        with open(path, 'a') as f:
            f.write(table + '\n')
        print(table)
    return 0


if __name__ == '__main__':
    sys.exit(main())
