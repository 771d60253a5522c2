"""Print a finished run's last validation metrics; fail below a floor.

Reads ``<work_dir>/<timestamp>/vis_data/scalars.json`` (mmengine's
``LocalVisBackend``) of the newest run in the work dir, and the training
health findings of ``TrainingHealthHook`` (``<work_dir>/health.json``).

Example::

    python tools/misc/check_run.py work_dirs/demo \
        --metric coco/bbox_mAP_50 --min 0.9
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple


def last_val_metrics(work_dir: str) -> Tuple[Optional[str], Dict]:
    """The last logged validation metrics of the newest run in a work dir.

    Args:
        work_dir (str): The runner's work dir.

    Returns:
        tuple[str | None, dict]: The scalars file read (None when there is
        none) and its last record that holds a ``coco/`` or ``pascal_voc/``
        metric (empty when none does).
    """
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        return None, {}
    path = files[-1]
    last: Dict = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            if any('/' in k and not k.startswith('train') for k in record):
                last = record
    return path, last


def health_findings(work_dir: str) -> List[Dict]:
    """The findings ``TrainingHealthHook`` wrote, if any.

    Args:
        work_dir (str): The runner's work dir.

    Returns:
        list[dict]: The findings; empty when there is no ``health.json``.
    """
    path = osp.join(work_dir, 'health.json')
    if not osp.isfile(path):
        return []
    with open(path) as f:
        data = json.load(f)
    return data.get('findings', []) if isinstance(data, dict) else data


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir', help='the run\'s work dir')
    parser.add_argument(
        '--metric', default='coco/bbox_mAP_50', help='the metric to check')
    parser.add_argument(
        '--min', type=float, default=None,
        help='fail (exit 1) when the metric is below this value')
    args = parser.parse_args(argv)

    path, metrics = last_val_metrics(args.work_dir)
    if path is None:
        print(f'check_run: no vis_data/scalars.json under {args.work_dir}: '
              'did the run reach its validation?', file=sys.stderr)
        return 1
    if args.metric not in metrics:
        print(f'check_run: {path} has no {args.metric!r}; its last '
              f'validation record has {sorted(metrics)}', file=sys.stderr)
        return 1
    shown = {k: v for k, v in metrics.items()
             if k.startswith(args.metric.split('/')[0] + '/')}
    print(f'check_run: {path}')
    for key, value in sorted(shown.items()):
        print(f'  {key}: {value}')
    for finding in health_findings(args.work_dir):
        print(f'  training health: {finding.get("kind")} at iteration '
              f'{finding.get("iteration")}: {finding.get("message")}')
    value = float(metrics[args.metric])
    if args.min is not None and value < args.min:
        print(f'check_run: FAILED: {args.metric} = {value:.3f} is below '
              f'{args.min:g}; the training did not converge (see the log '
              f'and health.json in {args.work_dir})', file=sys.stderr)
        return 1
    verdict = f' (>= {args.min:g}: OK)' if args.min is not None else ''
    print(f'check_run: {args.metric} = {value:.3f}{verdict}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
