"""``tools/finetune.py DATA``: fine-tune an R-CNN on a labelled folder.

It detects the format, layout and classes, splits off a seeded,
class-stratified validation set when there is none, chooses the input size
and schedule from the data, checks the data and the config, writes the
resolved config (a normal config inheriting ours) to the work dir, trains
with the run-folder hooks and the training-health guard, and evaluates the
best checkpoint on the test split when the data has one.
"""
import argparse
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
from typing import List, Optional

from mmengine.config import Config, DictAction

from ...utils.config_types import cfg_type_name
from .auto_config import REPO, FinetuneOptions, build_overrides, write_config
from .data_stats import (
    collect_stats,
    deep_image_loader,
    default_epochs,
    pick_img_scale,
    scale_for_long,
    small_object_warning,
)
from .prepare import (
    FinetuneError,
    bad_image_lines,
    build_split,
    check_cfg_options,
    check_val_classes,
    layout_summary,
    resolve_splits,
)
from .run import FROM_CHECKPOINT, VAL_AS_TEST, clear_earlier_run, train
from .run_folder import earlier_run_error, resume_guard

__all__ = ['main', 'parse_args', 'prepare']

FORMAT_CHOICES = ('auto', 'yolo', 'voc', 'coco', 'via', 'labelme', 'kitti',
                  'csv')
BATCH = {'faster-rcnn': 4, 'mask-rcnn': 2, 'fast-rcnn': 4}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when None.
            Defaults to None.

    Returns:
        argparse.Namespace: The options.
    """
    p = argparse.ArgumentParser(
        prog='finetune', description=__doc__.split('\n')[0])
    p.add_argument('data', help='the labelled folder')
    p.add_argument('--format', default='auto', choices=FORMAT_CHOICES)
    p.add_argument('--model', default='faster-rcnn', choices=tuple(BATCH))
    p.add_argument('--classes', nargs='+',
                   help='class names, in label order (default: the data)')
    p.add_argument('--epochs', type=int, help='default: from the data size')
    p.add_argument('--img-size', type=int,
                   help='long side of the input (default: from the images)')
    p.add_argument('--batch-size', type=int,
                   help='images per step and process (default: 4; Mask '
                   'R-CNN 2)')
    p.add_argument('--lr', type=float,
                   help='default: 0.02 x batch x gpus / 16 (linear scaling),'
                   ' at least 0.01')
    p.add_argument('--from', dest='from_ckpt', metavar='CKPT',
                   help='start from a detector checkpoint (classes '
                   're-targeted by class surgery)')
    p.add_argument('--proposals', metavar='DIR',
                   help='Fast R-CNN: <split>.pkl proposal files')
    p.add_argument('--work-dir', help='default: work_dirs/finetune_<data>')
    p.add_argument('--val-fraction', type=float, default=0.2,
                   help='held out when the data has no val split')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='auto', choices=('auto', 'cpu',
                                                         'cuda'))
    p.add_argument('--gpus', type=int, default=1,
                   help='processes; >1 goes through tools/dist_train.sh')
    p.add_argument('--resume', action='store_true',
                   help='resume from the newest checkpoint in the work dir')
    p.add_argument('--overwrite', action='store_true',
                   help='train from scratch in a work dir that holds an '
                   'earlier run (without it, or --resume, that is an error)')
    p.add_argument('--dry-run', action='store_true',
                   help='write the config and check, but do not train')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, key=value')
    return p.parse_args(argv)


def default_lr(total_batch: int) -> float:
    """SGD lr for ``total_batch`` images per step, all processes.

    mmdet's linear scaling (lr 0.02 at batch 16), but never under 0.01.
    Pure linear scaling gives 0.005 at batch 4 and 0.0025 at batch 2, and
    on our small datasets those trailed 0.01 (seed 0, one run each): on
    kitti_yolo, val mAP@0.5 averaged over epochs 27-36 was 0.327 at 0.005
    and 0.419 at 0.01; BCCD and balloon trailed our hand-written configs,
    which train stably at 0.01 with batch 4 and 2 (docs/finetune.md).

    Args:
        total_batch (int): Images per step over all processes.

    Returns:
        float: The learning rate.
    """
    return max(0.01, 0.02 * total_batch / 16)


def _options(args, layout, train_set) -> FinetuneOptions:
    """Choose size, schedule and lr from the data and the flags."""
    stats = collect_stats(
        [train_set.get_data_info(i) for i in range(len(train_set))])
    if args.img_size:
        scale = scale_for_long(stats, args.img_size)
        why = '--img-size'
    else:
        scale, why = pick_img_scale(stats)
    print(f'[finetune] input scale {scale} ({why})')
    deep, note = deep_image_loader(stats.img_paths)
    if note:
        print(f'[finetune] {note}')
    warning = small_object_warning(stats, scale)
    if warning:
        print(f'[finetune] WARNING: {warning}')
    batch = args.batch_size or BATCH[args.model]
    total = batch * max(args.gpus, 1)  # images per step, all processes
    epochs = args.epochs or default_epochs(stats.num_images, total)
    lr = args.lr or default_lr(total)
    print(f'[finetune] {args.model}, {epochs} epochs of {stats.num_images} '
          f'images at batch {batch} x {args.gpus} process(es), lr {lr:g}, '
          f'seed {args.seed}')
    return FinetuneOptions(
        model=args.model, classes=tuple(layout.classes), img_scale=scale,
        epochs=epochs, batch_size=batch, lr=lr, seed=args.seed,
        proposal_dir=args.proposals, gpus=max(args.gpus, 1),
        steps_per_epoch=math.ceil(stats.num_images / total),
        deep_images=deep)


def _check_model(args, layout) -> None:
    if args.model == 'mask-rcnn' and not layout.has_masks:
        raise FinetuneError(
            f'--model mask-rcnn needs polygon or mask annotations, and the '
            f'{layout.fmt} files under {layout.data_root} hold boxes only; '
            'use --model faster-rcnn')
    if args.model == 'fast-rcnn' and not args.proposals:
        raise FinetuneError(
            '--model fast-rcnn trains on precomputed proposals: give '
            '--proposals DIR with train.pkl, val.pkl (and test.pkl) as '
            'tools/generate_proposals.py writes them from a Faster R-CNN, '
            'or use --model faster-rcnn, which learns its own')


def _proposal_files(datasets: dict, proposal_dir: str) -> None:
    """Point each split at ``<proposal_dir>/<split>.pkl``.

    A validation set split off the training data reads ``train.pkl`` (its
    images are training images), and a test split that is the validation
    split is set once.
    """
    done = set()
    for split in ('train', 'val', 'test'):
        cfg = datasets[split]
        if id(cfg) in done:
            continue
        done.add(id(cfg))
        carved = (split != 'train'
                  and cfg_type_name(cfg) == 'ImageSubsetDataset')
        name = 'train' if carved else split
        path = osp.abspath(osp.join(proposal_dir, f'{name}.pkl'))
        if not osp.isfile(path):
            raise FinetuneError(f'--proposals: {path} does not exist '
                                f'(the {split} split reads it)')
        inner = cfg
        while 'dataset' in inner:
            inner = inner['dataset']
        inner['proposal_file'] = path


def prepare(args: argparse.Namespace) -> str:
    """Detect, split, choose and check; write the config. No training.

    Args:
        args (argparse.Namespace): The options of :func:`parse_args`.

    Returns:
        str: Path of the written config.

    Raises:
        FinetuneError: With a sentence, when the data or options are unfit.
    """
    from rcnn_plugin.datasets.layouts import detect_layout
    check_cfg_options(args.cfg_options)
    layout = detect_layout(args.data, args.format, args.classes)
    print('\n'.join(layout_summary(layout)))
    _check_model(args, layout)
    os.makedirs(args.work_dir, exist_ok=True)
    # absolute paths: the written config runs from any directory
    work_dir = osp.abspath(args.work_dir)
    datasets, lines = resolve_splits(layout, args.val_fraction, args.seed,
                                     osp.join(work_dir, 'splits'))
    print('\n'.join(lines)) if lines else None
    if args.proposals:
        _proposal_files(datasets, args.proposals)
    train_set = build_split(datasets['train'], False)
    val_set = build_split(datasets['val'], True)
    print(f'[finetune] {len(train_set)} training and {len(val_set)} '
          'validation images')
    if not len(train_set) or not len(val_set):
        raise FinetuneError(
            f'the {"training" if not len(train_set) else "validation"} '
            'split has no image left (see the skipped images above)')
    for line in bad_image_lines([train_set, val_set]):
        print(line)
    note = check_val_classes(train_set, val_set, layout.classes)
    if note:
        print(f'[finetune] WARNING: {note}')
    opts = _options(args, layout, train_set)
    if args.from_ckpt:
        opts.load_from = osp.join(work_dir, FROM_CHECKPOINT)
    overrides = dict(build_overrides(datasets, opts), work_dir=work_dir)
    if args.cfg_options:
        merged = Config(overrides)
        merged.merge_from_dict(args.cfg_options)
        overrides = merged.to_dict()
    name = osp.basename(osp.normpath(args.data)) or 'data'
    path = osp.join(args.work_dir, f'{args.model}_finetune_{name}.py')
    header = [f'Written by tools/finetune.py {" ".join(sys.argv[1:])}',
              f'on {time.strftime("%Y-%m-%d %H:%M")}: {layout.fmt} data '
              f'from {layout.data_root}, classes from '
              f'{layout.class_source}.',
              'Continue with tools/train.py THIS_FILE --resume; evaluate '
              'with tools/test.py THIS_FILE CKPT.']
    write_config(path, args.model, overrides, header)
    if args.from_ckpt:  # after the config: its heads decide the layout
        try:
            _retarget(args, layout.classes, path, opts.load_from)
        except FinetuneError:
            os.remove(path)  # no config whose load_from does not exist
            raise
    print(f'[finetune] config written to {path}')
    return path


def _class_agnostic_layers(config_path: str) -> List[str]:
    """The written model's class-agnostic layers (4 box deltas for every
    class, 1 mask channel): with one source class, their shape alone
    cannot tell them from class-specific ones."""
    roi_head = Config.fromfile(config_path).model.get('roi_head') or {}
    layers = []
    if (roi_head.get('bbox_head') or {}).get('reg_class_agnostic'):
        layers.append('roi_head.bbox_head.fc_reg')
    if (roi_head.get('mask_head') or {}).get('class_agnostic'):
        layers.append('roi_head.mask_head.conv_logits')
    return layers


def _retarget(args, classes, config_path: str, dst: str) -> None:
    from .pretrained import from_checkpoint_share, retarget_checkpoint
    try:
        lines = retarget_checkpoint(
            args.from_ckpt, classes, dst,
            class_agnostic=_class_agnostic_layers(config_path))
        share = from_checkpoint_share(config_path, dst)
    except FileNotFoundError:
        raise FinetuneError(f'--from {args.from_ckpt}: no such file') \
            from None
    except ValueError as err:  # not a detector, corrupt, unsafe pickle
        raise FinetuneError(str(err)) from None
    print(f'[finetune] --from {args.from_ckpt} ({share:.0%} of the model\'s '
          'weights), classes re-targeted:')
    print('\n'.join(f'  {line}' for line in lines))


def _decided_elsewhere(problem: str, dataset: dict) -> bool:
    """Whether the fine-tune handles a fatal problem of the data check.

    Classes absent from a split are judged by :func:`check_val_classes`
    (an error only when validation has them and training does not).
    Missing and undecodable images are skipped, counted and listed by the
    readers that can skip (``on_bad_image='skip'``); other readers would
    fail on them mid-epoch, so for those they stay fatal.
    """
    if problem.startswith('classes_never_present'):
        return True
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return problem.startswith(('missing_images', 'unreadable_images')) \
        and dataset.get('on_bad_image') == 'skip'


def _checks(cfg: Config) -> None:
    """The dataset check and the config doctor; stop on an error."""
    from rcnn_plugin.config_doctor import run_checks
    from rcnn_plugin.datasets import check_dataset_cfg, format_report
    # the test split too, if it is its own: a bad file there failed only
    # after the training, with no finetune.json
    splits = ('train', 'val') + (('test', ) * (
        cfg.test_dataloader.dataset != cfg.val_dataloader.dataset))
    reports = {split: check_dataset_cfg(
        cfg[f'{split}_dataloader']['dataset'].to_dict(), False)
        for split in splits}
    fatal = [f'{s}: {p}' for s, r in reports.items() for p in r['fatal']
             if not _decided_elsewhere(p, cfg[f'{s}_dataloader'].dataset)]
    if fatal:
        print(format_report(reports))
        raise FinetuneError('the dataset check found fatal problems:\n  '
                            + '\n  '.join(fatal))
    findings = run_checks(cfg, checks=['feature_strides', 'num_classes',
                                       'normalisation', 'evaluator'])
    for finding in findings:
        print(f'[config doctor] {finding}')
    errors = [f for f in findings if f.severity == 'error']
    if errors:
        raise FinetuneError(f'the config doctor found {len(errors)} '
                            'error(s), listed above with their fixes')
    images = sum(r['num_images'] for r in reports.values())
    print(f'[finetune] checks passed: the data ({images} images, no fatal '
          f'problem) and the config doctor ({len(findings)} finding(s))')


def _dist(config: str, args: argparse.Namespace) -> int:
    cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config,
           str(args.gpus), '--work-dir', args.work_dir] + (
               ['--resume'] if args.resume else [])
    print('[finetune] ' + ' '.join(cmd) + '\n[finetune] --gpus > 1 trains '
          'only: test the best checkpoint with tools/test.py (no '
          'finetune.json)', flush=True)
    return subprocess.call(cmd, env=dict(os.environ, PYTHON=sys.executable))


def main(argv: Optional[List[str]] = None) -> int:
    """Run the tool.

    Args:
        argv (list[str], optional): Arguments. Defaults to None.

    Returns:
        int: Exit status (2 for unfit data or options, with a sentence).
    """
    args = parse_args(argv)
    if args.device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    name = osp.basename(osp.normpath(args.data)) or 'data'
    args.work_dir = args.work_dir or osp.join('work_dirs',
                                              f'finetune_{name}')
    error = earlier_run_error(args)
    if error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    import rcnn_plugin  # noqa: F401  (registers the modules)
    from rcnn_plugin.datasets.errors import AnnotationError
    from rcnn_plugin.datasets.layouts import LayoutError
    try:
        try:
            with resume_guard(args.work_dir, args.resume):
                config = prepare(args)
            cfg = Config.fromfile(config)
            _checks(cfg)
        except ValueError as err:  # the readers' sentences (file, line)
            raise FinetuneError(f'{type(err).__name__}: {err}') from err
        if args.dry_run:
            return 0
        if args.overwrite:
            clear_earlier_run(args.work_dir)
        if args.gpus > 1:
            return _dist(config, args)
        out = train(cfg, args)
    except (FinetuneError, LayoutError, AnnotationError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    split = out['test_split']
    if split == 'val':
        split = f'val ({VAL_AS_TEST})'
    print(f'[finetune] done in {out["train_s"] / 60:.1f} min; run folder '
          f'{args.work_dir}; test on {split}: '
          f'{json.dumps(out["test"], default=float)}')
    return 0
