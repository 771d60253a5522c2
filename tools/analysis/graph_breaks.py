"""Count the torch.compile graph breaks of a detector (torch._dynamo.explain).

Examples::

    python tools/analysis/graph_breaks.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py
    python tools/analysis/graph_breaks.py CONFIG --part backbone --mode loss

Prints the number of graph breaks and graphs and the first break reasons;
``--out`` writes them as JSON. Nothing is compiled; CPU only.
"""
import argparse
import json

from mmengine.config import Config, DictAction

from rcnn_plugin.utils import merge_cfg_options
from rcnn_plugin.utils.graph_breaks import PARTS, detector_graph_breaks


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='detector config')
    parser.add_argument('--part', choices=PARTS, default='detector')
    parser.add_argument('--mode', choices=['predict', 'loss'],
                        default='predict')
    parser.add_argument('--img-size', type=int, nargs=2, default=[320, 320],
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--out', help='write the report as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    report = detector_graph_breaks(cfg, tuple(args.img_size),
                                   args.batch_size, args.mode, args.part)
    print(f"{args.part} ({args.mode}): {report['graph_breaks']} graph "
          f"breaks, {report['graphs']} graphs, {report['ops']} ops")
    for reason in report['reasons']:
        print(f'  - {reason}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(report, config=args.config), f, indent=1)


if __name__ == '__main__':
    main()
