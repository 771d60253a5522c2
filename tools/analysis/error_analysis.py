"""Why does a detector miss? TIDE error analysis (Bolya et al., ECCV 2020).

Splits the mAP@0.5 a model misses into Cls, Loc, Both, Dupl, Bkg and Miss
errors, overall and per class, and writes a gallery of the worst errors
of each class (docs/evaluation.md, "Error analysis (TIDE)").

Example::

    # from saved predictions (no model run)
    python tools/test.py CONFIG CKPT --out preds.pkl
    python tools/analysis/error_analysis.py CONFIG --pred preds.pkl \
        --split test --out-dir work_dirs/tide
    # or run the checkpoint
    python tools/analysis/error_analysis.py CONFIG CKPT --split val
"""
import argparse
import csv
import json
import os
import os.path as osp

import numpy as np
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules
from mmengine.config import Config, DictAction

import rcnn_plugin  # noqa: F401  (datasets, metrics, safe loading)
from rcnn_plugin.apis.error_analysis import (
    attach_ground_truth,
    check_max_images,
    gallery_entries,
    load_predictions,
    predict_split,
    write_gallery,
)
from rcnn_plugin.apis.inputs import split_reader
from rcnn_plugin.datasets import set_test_mode, update_inner_dataset_cfg
from rcnn_plugin.evaluation.metrics.tide_metric import (
    TIDEMetric,
    markdown_table,
    plot_tide,
    tide_rows,
)
from rcnn_plugin.utils import merge_cfg_options


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='TIDE error analysis and a gallery of the worst errors')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint (not needed with --pred)')
    parser.add_argument('--pred', help='predictions of tools/test.py --out '
                        '(made on --split); the model is not run')
    parser.add_argument('--split', choices=['val', 'test'], default='test')
    parser.add_argument('--out-dir', default='work_dirs/error_analysis')
    parser.add_argument('--score-thr', type=float, default=0.0,
                        help='drop detections below this score first '
                        '(default 0: all, as mAP uses them)')
    parser.add_argument('--max-images', type=int,
                        help='only the first N images of the split')
    parser.add_argument('--pos-thr', type=float, default=0.5,
                        help='foreground IoU t_f')
    parser.add_argument('--bg-thr', type=float, default=0.1,
                        help='background IoU t_b')
    parser.add_argument('--top-k', type=int, default=8,
                        help='gallery entries of each kind per class')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args()
    if args.pred is None and args.checkpoint is None:
        parser.error('give a CHECKPOINT to run, or --pred preds.pkl')
    if args.max_images is not None and args.max_images < 1:
        parser.error('--max-images must be >= 1')
    for name in ('pos_thr', 'bg_thr'):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1], "
                         f'got {getattr(args, name)}')
    if args.bg_thr > args.pos_thr:
        parser.error(f'--bg-thr ({args.bg_thr}) must not exceed --pos-thr '
                     f'({args.pos_thr})')
    if (args.pred is not None and '://' not in args.pred
            and not osp.isfile(args.pred)):
        parser.error(f'--pred file not found: {args.pred}')
    return args


def build_dataset(cfg: Config, split: str):
    """The split's dataset with its annotations and no pipeline."""
    loader = cfg.get(f'{split}_dataloader')
    if loader is None:
        raise SystemExit(f'the config has no {split}_dataloader')
    # Through wrappers (e.g. ClassSubsetDataset), which keep their subset.
    # (set_test_mode drops bbox_min_size: mmdet's VOC asserts on it)
    return DATASETS.build(
        update_inner_dataset_cfg(set_test_mode(loader.dataset), pipeline=[]))


def filter_scores(records: list, score_thr: float) -> None:
    """Drop detections below ``score_thr`` from the records in place."""
    for rec in records:
        keep = rec['pred_scores'] >= score_thr
        for key in ('pred_bboxes', 'pred_scores', 'pred_labels'):
            rec[key] = rec[key][keep]


def write_outputs(report: dict, out_dir: str) -> str:
    """``tide.json``, ``per_class.csv`` / ``.md`` and ``tide.png``; returns
    the markdown table."""
    with open(osp.join(out_dir, 'tide.json'), 'w') as f:
        json.dump(report, f, indent=2)
    header, rows = tide_rows(report)
    with open(osp.join(out_dir, 'per_class.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    table = markdown_table(header, rows)
    with open(osp.join(out_dir, 'per_class.md'), 'w') as f:
        f.write(table + '\n')
    plot_tide(report).savefig(osp.join(out_dir, 'tide.png'))
    return table


def main() -> None:
    args = parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    os.makedirs(args.out_dir, exist_ok=True)
    pred_file = args.pred
    if pred_file is None:
        pred_file = osp.join(args.out_dir, f'{args.split}_predictions.pkl')
        try:
            check_max_images(cfg, args.split, args.max_images)
        except ValueError as err:
            raise SystemExit(f'error: {err}') from None
        try:
            predict_split(cfg, args.checkpoint, args.split, pred_file,
                          osp.join(args.out_dir, 'run'), args.max_images)
        except (ValueError, FileNotFoundError) as err:  # a wrong checkpoint
            raise SystemExit(f'error: {err}') from None
    read = split_reader(cfg, args.split)  # before build_dataset drops it
    dataset = build_dataset(cfg, args.split)
    try:
        samples = attach_ground_truth(load_predictions(pred_file), dataset,
                                      args.max_images)
    except ValueError as err:
        raise SystemExit(f'error: {err}') from None
    metric = TIDEMetric(pos_thr=args.pos_thr, bg_thr=args.bg_thr)
    metric.dataset_meta = dataset.metainfo
    metric.process({}, samples)
    filter_scores(metric.results, args.score_thr)
    pooled, report = metric.analyse(metric.results)
    report['settings'].update(split=args.split, images=len(samples),
                              score_thr=args.score_thr, predictions=pred_file)
    table = write_outputs(report, args.out_dir)
    names = metric.class_names
    entries = gallery_entries(pooled, metric.results, names, args.top_k)
    index = write_gallery(entries, names, osp.join(args.out_dir, 'gallery'),
                          read=read)
    overall = report['overall']
    print(f'TIDE on {len(samples)} {args.split} images: mAP@{args.pos_thr:g}'
          f' {overall["mAP"]:.3f}; dAP per error type (mAP gained by '
          'fixing it) and error counts:\n' + table)
    worst = max(overall['dAP'], key=lambda k: overall['dAP'][k]
                if k not in ('FP', 'FN') else -np.inf)
    print(f'largest main error: {worst} (dAP {overall["dAP"][worst]:.3f})')
    print(f'wrote {args.out_dir}/tide.json, per_class.csv, per_class.md, '
          f'tide.png and the gallery {index}')


if __name__ == '__main__':
    main()
