"""Run the one-command fine-tune on the shared datasets and tabulate it.

Example::

    python tools/analysis/run_finetune_benchmark.py bccd balloon \\
        --work-dir work_dirs/finetune_bench

Each run is ``tools/finetune.py ../shared/datasets/<name> --work-dir
<work-dir>/<name>`` with no flag but the path (``--model mask-rcnn`` for
balloon, the one dataset with polygons), printed before it runs. A finished
run leaves ``finetune.json`` in its folder and is skipped when the driver is
started again, so a cut benchmark resumes (a cut run restarts from its
newest checkpoint with ``--resume``), but only if it was made by the same
command (kept in ``run.json``); otherwise the driver stops and names the
folder. The table goes to ``summary.md`` in the
work dir: wall time, the last validation's VOC mAP@0.5 and the test split's
(the validation split where the data has no test split).
"""
import argparse
import hashlib
import json
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA = osp.join(REPO, '..', 'shared', 'datasets')
DATASETS = ('bccd', 'balloon', 'kitti_yolo', 'bcd')
EXTRA = {'balloon': ['--model', 'mask-rcnn']}


def run_one(name: str, work_dir: str) -> Dict:
    """Fine-tune on one dataset (or read its finished result).

    Args:
        name (str): A folder of ``../shared/datasets``.
        work_dir (str): This run's work dir.

    Returns:
        dict: The run's ``finetune.json`` plus ``wall_s`` and ``command``.
    """
    from rcnn_plugin.utils.run_record import begin_run, reuse_run
    done = osp.join(work_dir, 'finetune.json')
    args = ['tools/finetune.py', osp.join(DATA, name), '--work-dir',
            work_dir] + EXTRA.get(name, [])
    # what the run is made from: the dataset's name and the flags (not
    # their paths, so a clone elsewhere keys the same)
    key = hashlib.sha1(' '.join([name] + args[4:]).encode()).hexdigest()
    if reuse_run(work_dir, done, key):
        with open(done) as f:
            return json.load(f)
    cmd = [sys.executable] + args
    if begin_run(work_dir, key, command=args):
        cmd.append('--resume')
    print('$', ' '.join(cmd[1:]), flush=True)
    start = time.monotonic()
    subprocess.run(cmd, cwd=REPO, check=True)
    with open(done) as f:
        result = json.load(f)
    result.update(wall_s=round(time.monotonic() - start, 1),
                  command=' '.join(cmd[1:]))
    with open(done, 'w') as f:
        json.dump(result, f, indent=2)
    return result


def table(results: Dict[str, Dict]) -> List[str]:
    """Markdown rows: dataset, wall time, val and test VOC mAP@0.5.

    Args:
        results (dict[str, dict]): Dataset name to :func:`run_one` result.

    Returns:
        list[str]: The table's lines.
    """
    lines = ['| data | seed | lr | wall (min) | last val VOC mAP@0.5 | '
             'test VOC mAP@0.5 | test COCO mAP |',
             '|---|---|---|---|---|---|---|']
    for name, res in results.items():
        val = res.get('val') or [{}]
        test = res.get('test') or {}
        wall = res.get('wall_s', res.get('train_s', 0)) / 60
        lines.append(
            f'| {name} | {res.get("seed")} | {res.get("lr", "?")} | '
            f'{wall:.1f} | '
            f'{val[-1].get("pascal_voc/mAP", float("nan")):.3f} | '
            f'{test.get("pascal_voc/mAP", float("nan")):.3f} | '
            f'{test.get("coco/bbox_mAP", float("nan")):.3f} |')
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('datasets', nargs='*', default=list(DATASETS),
                        choices=DATASETS)
    parser.add_argument('--work-dir', default='work_dirs/finetune_bench')
    args = parser.parse_args(argv)
    results = {}
    for name in args.datasets:
        if not osp.isdir(osp.join(DATA, name)):
            print(f'skipped {name}: {osp.join(DATA, name)} is absent')
            continue
        results[name] = run_one(name, osp.join(args.work_dir, name))
    lines = table(results)
    print('\n'.join(lines))
    with open(osp.join(args.work_dir, 'summary.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
