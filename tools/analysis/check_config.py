"""Check a config for silent misconfigurations before training.

Builds the model (no weights are loaded) and the datasets, runs a dry
forward on a blank image and reports feature strides, class counts,
normalisation, learning rate, offline weights, evaluators and empty data.
Prints a table, optionally writes JSON, exits with 1 if there is an error.

Example::

    python tools/analysis/check_config.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
        --out work_dirs/check.json
"""
import argparse
import os
import os.path as osp
import sys
import time

from mmengine.config import Config, DictAction

from rcnn_plugin.config_doctor import (
    CHECKS,
    count_by_severity,
    findings_to_json,
    run_checks,
)
from rcnn_plugin.utils import merge_cfg_options

_STYLE = {'error': 'bold red', 'warning': 'yellow', 'info': 'cyan'}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Check a detector config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value (xxx=yyy format)')
    parser.add_argument('--out', help='write the findings to this JSON file')
    parser.add_argument(
        '--skip-data',
        action='store_true',
        help='do not build the datasets (skips the data checks; the '
        'schedule check then compares epochs only)')
    parser.add_argument(
        '--checks', nargs='+', choices=list(CHECKS),
        help='run only these checks (default: all)')
    parser.add_argument(
        '--world-size', type=int,
        default=int(os.environ.get('WORLD_SIZE', 1)),
        help='number of training processes (GPUs), for the lr and schedule '
        'checks')
    return parser.parse_args()


def print_table(findings: list, title: str) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title=title, show_lines=True)
    for name in ('severity', 'check', 'finding', 'fix'):
        table.add_column(name, overflow='fold')
    order = ('error', 'warning', 'info')
    for f in sorted(findings, key=lambda f: order.index(f.severity)):
        table.add_row(f'[{_STYLE[f.severity]}]{f.severity}[/]', f.check,
                      f.message, f.fix)
    Console(width=max(120, Console().width)).print(table)


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    start = time.perf_counter()
    findings = run_checks(cfg, checks=args.checks, world_size=args.world_size,
                          skip_data=args.skip_data)
    seconds = time.perf_counter() - start
    counts = count_by_severity(findings)
    if findings:
        print_table(findings, osp.basename(args.config))
    print(f'{counts["error"]} error(s), {counts["warning"]} warning(s), '
          f'{counts["info"]} info in {seconds:.1f} s')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(findings_to_json(findings, args.config))
    return 1 if counts['error'] else 0


if __name__ == '__main__':
    sys.exit(main())
