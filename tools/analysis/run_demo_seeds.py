"""Train the demo config once per seed and tabulate held-out mAP.

Example::

    python tools/analysis/run_demo_seeds.py --seeds 0 1 2 3 4 \\
        --work-dir work_dirs/demo_seeds

Each run is ``tools/train.py <config> --work-dir <work-dir>/seed<N>
--cfg-options randomness.seed=<N>``, printed before it runs. A finished run
leaves ``result.json`` (metrics and wall time) in its folder and is skipped
when the driver is started again, and a seed cut part-way continues from
its newest checkpoint (``--resume``), so a cut benchmark resumes. The table of
every seed goes to ``summary.md`` in the work dir.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
from check_run import last_val_metrics  # noqa: E402

DEMO = 'configs/demo/faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py'
KEYS = ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75',
        'coco/rbc_precision', 'coco/wbc_precision',
        'coco/platelet_precision')


def run_seed(config: str, work_dir: str, seed: int) -> Dict:
    """Train one seed (or read its finished result).

    Args:
        config (str): The config, relative to the repository root.
        work_dir (str): This seed's work dir.
        seed (int): ``randomness.seed``.

    Returns:
        dict: ``seed``, ``wall_s`` and the metrics in ``KEYS``.
    """
    from rcnn_plugin.utils.run_record import begin_run, config_key, reuse_run
    folder = osp.join(REPO, work_dir)
    done = osp.join(folder, 'result.json')
    options = [f'randomness.seed={seed}']
    # what the seed is trained from: a result (or a cut run) of another
    # config or checkpoint in this folder is refused, not reported as this
    key = config_key(config, options, REPO)
    if reuse_run(folder, done, key):
        with open(done) as f:
            return json.load(f)
    resume = begin_run(folder, key, config=config, options=options)
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
           '--cfg-options'] + options
    start = time.monotonic()
    for attempt in ([cmd + ['--resume'], cmd] if resume else [cmd]):
        print('$', ' '.join(attempt[1:]), flush=True)  # a cut seed continues
        subprocess.run(attempt, cwd=REPO, check=True)
        path, metrics = last_val_metrics(osp.join(REPO, work_dir))
        if path is not None and KEYS[1] in metrics:
            break
        # cut after its last checkpoint, before its validation: resuming
        # trains and validates nothing, so it is trained again
    wall = time.monotonic() - start
    if path is None or KEYS[1] not in metrics:
        raise RuntimeError(f'seed {seed}: no validation metrics under '
                           f'{work_dir}')
    result = dict(seed=seed, wall_s=round(wall, 1),
                  **{k: metrics[k] for k in KEYS if k in metrics})
    with open(done, 'w') as f:
        json.dump(result, f, indent=2)
    return result


def _stat(fn, values: List[float]) -> str:
    """``fn`` over the seeds that logged the metric ('-' for too few:
    another config's evaluator may not log every column)."""
    if len(values) < (2 if fn is statistics.stdev else 1):
        return '-'
    return f'{fn(values):.3f}'


def summary(results: List[Dict], config: str) -> str:
    """A markdown table of every seed, then mean, std, min over seeds."""
    cols = ['seed'] + [k.split('/')[1] for k in KEYS] + ['wall (min)']
    lines = [f'# {config}', '', '| ' + ' | '.join(cols) + ' |',
             '|' + '---|' * len(cols)]
    for r in results:
        row = [str(r['seed'])] + [f'{r.get(k, float("nan")):.3f}'
                                  for k in KEYS]
        lines.append('| ' + ' | '.join(row + [f'{r["wall_s"] / 60:.1f}'])
                     + ' |')
    if len(results) > 1:
        for name, fn in (('mean', statistics.mean),
                         ('std', statistics.stdev), ('min', min)):
            row = [name] + [_stat(fn, [r[k] for r in results if k in r])
                            for k in KEYS]
            walls = [r['wall_s'] / 60 for r in results]
            lines.append('| ' + ' | '.join(row + [f'{fn(walls):.1f}'])
                         + ' |')
    return '\n'.join(lines) + '\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEMO)
    parser.add_argument('--seeds', type=int, nargs='+',
                        default=[0, 1, 2, 3, 4])
    parser.add_argument('--work-dir', default='work_dirs/demo_seeds')
    parser.add_argument('--data', default='data/synthetic_cells',
                        help='written with make_synthetic_cells.py if absent')
    args = parser.parse_args()
    if not osp.isfile(osp.join(REPO, args.data, 'annotations', 'val.json')):
        subprocess.run([sys.executable, 'tools/misc/make_synthetic_cells.py',
                        args.data], cwd=REPO, check=True)
    os.makedirs(osp.join(REPO, args.work_dir), exist_ok=True)
    results = []
    for seed in args.seeds:
        results.append(run_seed(args.config,
                                osp.join(args.work_dir, f'seed{seed}'), seed))
        text = summary(results, args.config)
        with open(osp.join(REPO, args.work_dir, 'summary.md'), 'w') as f:
            f.write(text)
        print(text, flush=True)


if __name__ == '__main__':
    main()
