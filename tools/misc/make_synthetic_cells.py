"""Write the demo's synthetic smear dataset (COCO format).

Example::

    python tools/misc/make_synthetic_cells.py data/synthetic_cells
"""
import argparse
import os.path as osp

from rcnn_plugin.datasets import make_synthetic_cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--num-train', type=int, default=240)
    parser.add_argument('--num-val', type=int, default=60)
    parser.add_argument('--img-size', type=int, default=320)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    files = make_synthetic_cells(args.out_dir, args.num_train, args.num_val,
                                 args.img_size, args.seed)
    for split, path in files.items():
        print(f'{split}: {osp.abspath(path)}')


if __name__ == '__main__':
    main()
