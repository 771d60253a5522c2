"""Micro-benchmark of multi-level RoIAlign: mmcv, torchvision, sparse.

Times the RoI extractor alone on FPN-shaped features (4 levels of an
N x 3 x H x W batch at strides 4, 8, 16, 32) and random RoIs whose sizes
are log-uniform (sqrt of the area from 8 px to the image height, aspect
ratio 1:2 to 2:1, clipped to the image), as a training step samples them.
Reports the median CPU time (``time.process_time``) over the repeats of
the forward alone, and of forward + backward (gradient w.r.t. the
features), for:

- ``mmcv``: mmdet's ``SingleRoIExtractor`` with mmcv's ``RoIAlign``;
- ``torchvision``: ``TorchvisionRoIExtractor`` (``roi_align`` per level);
- ``sparse``: ``TorchvisionRoIExtractor(backend='sparse')``, one CSR
  matrix product (the shipped formulation);
- ``sparse-coo``: the same matrix as COO, autograd of ``torch.sparse.mm``;
- ``gather``: the same weights applied by ``index_select`` and
  ``index_add_`` (materialises one C-vector per non-zero weight).

Example::

    python tools/analysis/roi_align_benchmark.py --threads 1 --out r.json
"""
import argparse
import json
import math
import time
import warnings
from typing import Callable, Dict, List

import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

from rcnn_plugin.models import TorchvisionRoIExtractor
from rcnn_plugin.models.layers.sparse_roi_align import (
    flatten_levels,
    roi_align_matrix,
)

STRIDES = [4, 8, 16, 32]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--img-size', type=int, nargs=2, default=[480, 640],
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--channels', type=int, default=128)
    parser.add_argument('--output-size', type=int, default=7)
    parser.add_argument('--sampling-ratio', type=int, default=0)
    parser.add_argument('--train-rois', type=int, default=1024,
                        help='RoIs of the forward + backward case')
    parser.add_argument('--infer-rois', type=int, default=2000,
                        help='RoIs of the forward-only (inference) case')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='write the result as JSON here')
    return parser.parse_args()


def random_rois(num: int, num_imgs: int, img_hw: List[int],
                gen: torch.Generator) -> torch.Tensor:
    """(num, 5) RoIs with log-uniform sizes, clipped to the image."""
    height, width = img_hw
    log_scale = torch.empty(num).uniform_(
        math.log(8.), math.log(height), generator=gen)
    log_ratio = torch.empty(num).uniform_(
        math.log(0.5), math.log(2.), generator=gen)
    scale, ratio = log_scale.exp(), log_ratio.exp()
    half_w, half_h = scale * ratio.sqrt() / 2, scale / ratio.sqrt() / 2
    cx = torch.rand(num, generator=gen) * width
    cy = torch.rand(num, generator=gen) * height
    batch = torch.randint(0, num_imgs, (num,), generator=gen).float()
    return torch.stack([
        batch, (cx - half_w).clamp(0, width), (cy - half_h).clamp(0, height),
        (cx + half_w).clamp(0, width), (cy + half_h).clamp(0, height)
    ], dim=1)


def median_ms(fn: Callable[[], None], repeats: int) -> float:
    """Median process time of ``fn`` in milliseconds (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2] * 1000


def _matrix_variants(ref: SingleRoIExtractor, args) -> Dict[str, Callable]:
    """``pool(feats, rois)`` for the COO and gather formulations."""
    size = (args.output_size, args.output_size)
    scales = [1. / s for s in STRIDES]

    def matrix(feats, rois):
        levels = ref.map_roi_levels(rois, len(feats))
        shapes = [(f.shape[0], f.shape[2], f.shape[3]) for f in feats]
        return roi_align_matrix(rois, levels, shapes, scales, size,
                                args.sampling_ratio)

    def unflatten(out, rois):
        return out.view(rois.shape[0], *size, -1).permute(0, 3, 1, 2)

    def coo(feats, rois):
        flat, _ = flatten_levels(feats)
        out = torch.sparse.mm(matrix(feats, rois).to_sparse_coo(), flat)
        return unflatten(out, rois)

    def gather(feats, rois):
        csr = matrix(feats, rois)
        flat, _ = flatten_levels(feats)
        crow = csr.crow_indices()
        rows = torch.repeat_interleave(
            torch.arange(csr.shape[0]), crow[1:] - crow[:-1])
        taps = flat.index_select(0, csr.col_indices()) * csr.values()[:, None]
        out = flat.new_zeros(csr.shape[0], flat.shape[1])
        out.index_add_(0, rows, taps)
        return unflatten(out, rois)

    return {'sparse-coo': coo, 'gather': gather}


def build_variants(args) -> Dict[str, Callable]:
    """Every variant as ``pool(feats, rois) -> (R, C, h, w)``."""
    cfg = dict(
        roi_layer=dict(type='RoIAlign', output_size=args.output_size,
                       sampling_ratio=args.sampling_ratio),
        out_channels=args.channels, featmap_strides=STRIDES)
    ref = SingleRoIExtractor(**cfg)
    variants = {
        'mmcv': lambda feats, rois: ref(tuple(feats), rois),
        'torchvision': TorchvisionRoIExtractor(**cfg),
        'sparse': TorchvisionRoIExtractor(**cfg, backend='sparse'),
    }
    variants.update(_matrix_variants(ref, args))
    return variants


def time_variant(pool: Callable, feats: List[torch.Tensor],
                 train_rois: torch.Tensor, infer_rois: torch.Tensor,
                 repeats: int) -> Dict[str, float]:
    """Forward (inference RoIs) and forward + backward (training RoIs)."""
    leaves = [f.clone().requires_grad_(True) for f in feats]

    def forward():
        with torch.no_grad():
            pool(feats, infer_rois)

    def forward_backward():
        out = pool(leaves, train_rois)
        out.backward(torch.ones_like(out))

    def forward_train():
        with torch.no_grad():
            pool(feats, train_rois)

    return dict(forward_infer_ms=median_ms(forward, repeats),
                forward_train_ms=median_ms(forward_train, repeats),
                forward_backward_ms=median_ms(forward_backward, repeats))


def main() -> None:
    args = parse_args()
    warnings.filterwarnings('ignore', message='Sparse CSR')
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    height, width = args.img_size
    feats = [
        torch.randn(args.batch_size, args.channels, height // s, width // s,
                    generator=gen) for s in STRIDES
    ]
    train_rois = random_rois(args.train_rois, args.batch_size, args.img_size,
                             gen)
    infer_rois = random_rois(args.infer_rois, args.batch_size, args.img_size,
                             gen)
    results = {}
    for name, pool in build_variants(args).items():
        results[name] = time_variant(pool, feats, train_rois, infer_rois,
                                     args.repeats)
        print(name, {k: round(v, 1) for k, v in results[name].items()})
    base = results['torchvision']
    print(f'\n| variant | forward {args.infer_rois} RoIs (ms) | forward '
          f'{args.train_rois} RoIs (ms) | forward + backward '
          f'{args.train_rois} RoIs (ms) | fwd+bwd speed-up vs torchvision |')
    print('|---|---|---|---|---|')
    for name, res in results.items():
        speedup = base['forward_backward_ms'] / res['forward_backward_ms']
        print(f"| {name} | {res['forward_infer_ms']:.1f} | "
              f"{res['forward_train_ms']:.1f} | "
              f"{res['forward_backward_ms']:.1f} | {speedup:.2f}x |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), results=results), f, indent=1)


if __name__ == '__main__':
    main()
