"""Deployment benchmark: PyTorch eager against ONNX Runtime / OpenVINO
(fp32 and int8), CPU, batch 1, on a config's test split.

Example::

    python tools/analysis/benchmark_deploy.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py best.pth \
        --onnx work_dirs/bccd.onnx --int8-onnx work_dirs/bccd.int8.onnx \
        --threads 2 [--num-images N] [--out bench.json]

Each backend runs in its own subprocess, one after the other, so that its
peak RSS (``ru_maxrss`` of that process: model, graphs and the test run,
after the same imports) is its own. Per backend: p50 / p90 latency per
image (``Predictor.predict`` on one decoded image: preprocessing, graphs or
layers, post-processing), images/s (1 / mean latency), peak RSS, VOC
mAP@0.5 (mmdet's ``VOCMetric``, ``eval_mode='area'``), COCO box AP and
AP50 and, for a model that predicts masks (Mask R-CNN), mask AP and AP50
(mmdet's ``CocoMetric``; without an ``ann_file`` it builds the COCO ground
truth from the dataset's instances, boxes and polygon / RLE masks; see
:class:`rcnn_plugin.deployment.BackendAccuracy`), and the fraction of the
top-100 detections matching PyTorch's (same class, IoU > 0.99, |score
difference| < 1e-3; mean over images, and images with >= 95 %).
"""
import argparse
import copy
import json
import os
import os.path as osp
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Optional

import numpy as np

ROWS = {  # name: (backend, which ONNX file)
    'pytorch': ('pytorch', None),
    'onnxruntime-fp32': ('onnxruntime', 'onnx'),
    'openvino-fp32': ('openvino', 'onnx'),
    'onnxruntime-int8': ('onnxruntime', 'int8_onnx'),
    'openvino-int8': ('openvino', 'int8_onnx'),
}
AP_KEYS = ('box_ap', 'box_ap50', 'mask_ap', 'mask_ap50')  # COCO, 0-1


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Deployment benchmark')
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint, or 'none'")
    parser.add_argument('--onnx', help='fp32 export (export_onnx.py)')
    parser.add_argument('--int8-onnx', help='int8 export (quantize_onnx.py)')
    parser.add_argument('--rows', nargs='+', choices=list(ROWS),
                        help='default: every row whose files are given')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--num-images', type=int,
                        help='first N test images (default: all)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--rounds', type=int, default=1,
        help='run every row this many times, the order reversed each '
        'round (ABBA); x eager is then the median of the per-round ratios '
        '(rows run one after another in their own processes: a change of '
        'machine load between them moves a one-round ratio)')
    parser.add_argument('--out', help='write the results as JSON')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
        help='override config keys for every row, e.g. '
        'model.test_cfg.rpn.max_per_img=300 (the ONNX files stay as '
        'exported: only test-time settings outside the graphs apply)')
    parser.add_argument('--worker', choices=list(ROWS), help=argparse.SUPPRESS)
    parser.add_argument('--worker-out', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args) -> None:
    """Run one backend over the test split; write its JSON."""
    import torch
    torch.set_num_threads(args.threads)
    from mmdet.registry import DATASETS
    from mmengine.config import Config

    from rcnn_plugin.apis import (
        dataset_image_paths,
        instances_to_dicts,
        make_predictor,
    )
    from rcnn_plugin.deployment import BackendAccuracy
    from rcnn_plugin.utils import merge_cfg_options
    cfg = Config.fromfile(args.config)
    config = args.config
    if args.cfg_options:
        merge_cfg_options(cfg, args.cfg_options)
        config = osp.join(tempfile.mkdtemp(), osp.basename(args.config))
        cfg.dump(config)  # the predictor reads a file
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    if 'pipeline' in ds_cfg:  # a wrapper (ClassSubsetDataset...) has none
        ds_cfg['pipeline'] = []
    try:
        paths = dataset_image_paths(cfg, 'test', args.num_images)
        dataset = DATASETS.build(ds_cfg)
    except (OSError, ValueError) as err:  # FileNotFoundError, bad labels
        raise SystemExit(f'benchmark_deploy.py: error: the test split of '
                         f'{args.config} cannot be read ({err}); the '
                         'benchmark scores every row on it') from None
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    backend, key = ROWS[args.worker]
    ckpt = None if args.checkpoint == 'none' else args.checkpoint
    try:
        predictor = make_predictor(config, ckpt, backend,
                                   getattr(args, key) if key else None)
    finally:
        if config != args.config:
            shutil.rmtree(osp.dirname(config))
    accuracy = BackendAccuracy(predictor.classes)
    index, images = read_images(predictor, paths, args.worker)
    for image in images[:args.warmup]:
        predictor.predict([image])
    latencies, dets = [], []
    for i, image in zip(index, images):  # i: the dataset index
        start = time.perf_counter()
        pred = predictor.predict([image])[0]
        latencies.append(time.perf_counter() - start)
        dets.append(instances_to_dicts(pred)[:100])
        accuracy.add(dataset.get_data_info(i), pred, image.shape)
    result = dict(  # peak RSS of the test run, before the metrics
        row=args.worker, images=len(images),
        skipped=len(paths) - len(images), latencies=latencies,
        peak_rss_mb=resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024,
        rss_after_imports_mb=rss_imports / 1024, dets=dets)
    result.update(accuracy.compute())
    with open(args.worker_out, 'w') as f:
        json.dump(result, f)


def read_images(predictor, paths: list, row: str) -> tuple:
    """Decoded test images with their dataset indices; those that do not
    decode are left out, and named."""
    index, images, unreadable = [], [], []
    for i, path in enumerate(paths):
        image = predictor.read(path)
        if image is None:  # logged by the reader
            unreadable.append(path)
            continue
        index.append(i)
        images.append(image)
    if unreadable:
        print(f'[benchmark] {row}: skipped {len(unreadable)} test image(s) '
              f'that do not decode: {unreadable[:5]}')
    if not images:
        raise SystemExit(f'benchmark_deploy.py: error: none of the '
                         f'{len(paths)} test images decodes')
    return index, images


def run_row(argv: list, row: str) -> dict:
    """Run ``row`` in a fresh subprocess and read its JSON."""
    with tempfile.NamedTemporaryFile(suffix='.json') as tmp:
        env = dict(os.environ, OMP_NUM_THREADS=str(parse_args(argv).threads))
        subprocess.run([sys.executable, __file__, *argv, '--worker', row,
                        '--worker-out', tmp.name], check=True, env=env)
        with open(tmp.name) as f:
            return json.load(f)


def summarise(results: dict, rounds: Optional[list] = None) -> list:
    """Table rows: latency percentiles, speed, RSS, mAP / AP, match.

    Args:
        results (dict): Row name -> the JSON of its worker (latencies of
            every round).
        rounds (list, optional): Each round's row name -> latencies; the
            speed-up is the median of the per-round ratios. Defaults to
            None (one round: ``results``).

    Returns:
        list: One dict per row; ``mask_ap`` / ``mask_ap50`` are None for a
        model without masks.
    """
    from rcnn_plugin.deployment import compare_detections
    ref = results.get('pytorch')
    rows = []
    for name, res in results.items():
        lat = np.array(res['latencies']) * 1000
        row = dict(row=name, p50_ms=float(np.percentile(lat, 50)),
                   p90_ms=float(np.percentile(lat, 90)),
                   images_per_s=float(1000 / lat.mean()),
                   peak_rss_mb=res['peak_rss_mb'],
                   rss_after_imports_mb=res['rss_after_imports_mb'],
                   map50=res['map50'], skipped=res.get('skipped', 0),
                   **{k: res.get(k) for k in AP_KEYS})
        if ref is not None:
            cmp = compare_detections(ref['dets'], res['dets'])
            ratios = [np.mean(r['pytorch']) / np.mean(r[name]) for r in
                      rounds or [{k: v['latencies'] for k, v in
                                  results.items()}]]
            row.update(match_fraction=cmp['match_fraction'],
                       images_matched=cmp['images_matched'],
                       speedup=float(np.median(ratios)),
                       speedup_rounds=[float(x) for x in ratios])
        rows.append(row)
    return rows


def _ap(value, digits: int = 3) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def format_table(table: list, results: dict) -> str:
    """The markdown table of :func:`summarise`'s rows.

    Args:
        table (list): Rows of :func:`summarise`.
        results (dict): Row name -> worker JSON (for the image count).

    Returns:
        str: The table; '-' where a row has no mask AP, and in the
        comparison columns without a ``pytorch`` row.
    """
    lines = ['| row | p50 ms | p90 ms | images/s | x eager | peak RSS MB | '
             'mAP@0.5 | box AP | box AP50 | mask AP | mask AP50 | '
             'top-100 match | images >= 95 % |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in table:
        aps = ' | '.join(_ap(r.get(k)) for k in AP_KEYS)
        lines.append(
            f"| {r['row']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
            f"{r['images_per_s']:.2f} | {_ap(r.get('speedup'), 2)} | "
            f"{r['peak_rss_mb']:.0f} | {r['map50']:.4f} | {aps} | "
            f"{_ap(r.get('match_fraction'))} | "
            + (f"{r['images_matched']}/{results[r['row']]['images']} |"
               if 'images_matched' in r else '- |'))
    lines += [f"\n{r['row']}: {r['skipped']} test image(s) did not decode "
              'and are left out of every column' for r in table
              if r.get('skipped')]
    return '\n'.join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    rows = args.rows or [r for r, (_, key) in ROWS.items()
                         if key is None or getattr(args, key)]
    unfed = [f'{r} (--{ROWS[r][1].replace("_", "-")})' for r in rows
             if ROWS[r][1] and not getattr(args, ROWS[r][1])]
    if unfed or args.rounds < 1:
        raise SystemExit('benchmark_deploy.py: error: '
                         + (f'these rows need their file: {unfed}'
                            if unfed else '--rounds must be >= 1'))
    per_round = []
    for i in range(args.rounds):  # ABBA: the order reversed each round
        order = rows if i % 2 == 0 else rows[::-1]
        try:
            per_round.append({row: run_row(argv, row) for row in order})
        except subprocess.CalledProcessError as err:
            raise SystemExit(f'benchmark_deploy.py: error: a row failed '
                             f'(exit code {err.returncode}); its message is '
                             'above') from None
    results = {row: dict(per_round[0][row], latencies=[
        t for r in per_round for t in r[row]['latencies']]) for row in rows}
    table = summarise(results, [{k: v['latencies'] for k, v in r.items()}
                                for r in per_round])
    print(format_table(table, results))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), rows=table), f, indent=2)


if __name__ == '__main__':
    main()
