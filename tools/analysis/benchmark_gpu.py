"""Faster R-CNN R50-FPN throughput: stock mmdet vs the plugin's fast path.

Run through ``tools/benchmark_gpu.sh``; see the docstring of
:mod:`rcnn_plugin.utils.gpu_benchmark` for the variants.
"""
import argparse
import os

import torch

from rcnn_plugin.utils.gpu_benchmark import GPUBenchmark, markdown


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=os.environ.get(
        'OUT', 'work_dirs/benchmark_gpu'), help='output folder')
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda')
    parser.add_argument('--tiny', action='store_true',
                        help='smoke test: ResNet-18, 96x128 images, batch 1, '
                        '1 round')
    parser.add_argument('--img-size', type=int, nargs=2, default=[800, 1333],
                        metavar=('H', 'W'))
    parser.add_argument('--batch-sizes', type=int, nargs='+',
                        default=[2, 8, 16])
    parser.add_argument('--infer-batch', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--budget', type=float, default=230.,
                        help='seconds after which no new cell starts')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: torch sees no CUDA device; use '
                         '--device cpu --tiny for a smoke test')
    if args.tiny:
        args.img_size, args.batch_sizes, args.infer_batch = [96, 128], [1], 1
        args.rounds, args.iters, args.warmup = 1, 1, 1
    bench = GPUBenchmark(args.device, args.out, args.img_size,
                         args.batch_sizes, args.infer_batch, args.rounds,
                         args.iters, args.warmup, args.budget, args.tiny)
    result = bench.run()
    print(markdown(result))
    print(f'written to {args.out}/benchmark_gpu.json and .md')


if __name__ == '__main__':
    main()
