"""Compiled mmcv ops against the torchvision-served ones, in one process.

Arm A runs a detector with mmcv's compiled ``mmcv._ext``; arm B runs the
same model (same weights, same batch) with every ``mmcv.ops`` wrapper's
``ext_module`` swapped to ``rcnn_plugin/ops/mmcv_ext`` for the duration of
the step. Training steps and inference are timed in ABBA rounds (B/A
ratios), and the outputs are compared: the losses and every parameter's
gradient of one training step, and the predicted boxes and scores.

Example (needs a compiled mmcv, e.g. ``RCNN_MMCV=full`` set-up)::

    python tools/analysis/benchmark_ops.py \\
        mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py --rounds 5
"""
import argparse
import importlib
import json
import os
import os.path as osp
import tempfile
from typing import Callable, Dict

import torch
from mmengine.config import Config

import rcnn_plugin  # noqa: F401  (registers modules, installs the finder)
from rcnn_plugin.ops import compiled_ext_available, load_served, use_ext
from rcnn_plugin.utils.benchmark import (
    abba,
    build_detector,
    infer_step_fn,
    synthetic_batch,
    train_step_fn,
)


def wrapped(fn: Callable[[], None], ext) -> Callable[[], None]:
    """``fn`` run under :func:`use_ext`."""
    def step() -> None:
        with use_ext(ext):
            fn()
    return step


def losses_and_grads(model, batch: dict) -> Dict[str, torch.Tensor]:
    """The loss terms and parameter gradients of one step, no update."""
    model.train()
    model.zero_grad(set_to_none=True)
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    total, log = model.parse_losses(losses)
    total.backward()
    out = {f'loss/{k}': v.detach().clone() for k, v in log.items()}
    for name, p in model.named_parameters():
        if p.grad is not None:
            out[f'grad/{name}'] = p.grad.detach().clone()
    model.zero_grad(set_to_none=True)
    return out


def predictions(model, batch: dict) -> Dict[str, torch.Tensor]:
    """Boxes, scores and labels of every image."""
    model.eval()
    with torch.no_grad():
        results = model.test_step(batch)
    out = {}
    for i, r in enumerate(results):
        for key in ('bboxes', 'scores', 'labels'):
            out[f'{key}/{i}'] = r.pred_instances[key].detach().clone()
    return out


def max_diff(a: Dict[str, torch.Tensor],
             b: Dict[str, torch.Tensor]) -> Dict[str, object]:
    """Largest absolute and relative difference over matching tensors."""
    if a.keys() != b.keys():
        return dict(equal_keys=False)
    worst, worst_key, worst_rel = 0.0, None, 0.0
    for key in a:
        if a[key].shape != b[key].shape:
            return dict(equal_keys=True, shape_mismatch=key)
        if a[key].numel() == 0:
            continue
        finite_a, finite_b = a[key].isfinite(), b[key].isfinite()
        if not torch.equal(finite_a, finite_b):  # NaN > x is never true
            return dict(equal_keys=True, nonfinite_mismatch=key)
        diff = (a[key].double() - b[key].double())[finite_a].abs()
        diff = diff.max().item() if diff.numel() else 0.0
        scale = a[key].double()[finite_a].abs()
        scale = scale.max().item() if scale.numel() else 0.0
        if diff > worst:
            worst, worst_key = diff, key
            worst_rel = diff / scale if scale else diff
    return dict(equal_keys=True, max_abs=worst, max_rel=worst_rel,
                at=worst_key, tensors=len(a))


def load_config(path: str) -> Config:
    """A config file, or an ``mmdet::`` config from mmdet's package."""
    if not path.startswith('mmdet::'):
        return Config.fromfile(path)
    with tempfile.TemporaryDirectory() as tmp:
        stub = osp.join(tmp, 'stock.py')
        with open(stub, 'w') as f:
            f.write(f'_base_ = {path!r}\n')
        return Config.fromfile(stub)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--img-size', type=int, nargs=2, default=[480, 640])
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--num-gts', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int)
    parser.add_argument('--seed', type=int, default=0,
                        help='seeds the random initial weights')
    parser.add_argument('--clock', choices=['wall', 'process'],
                        default='wall')
    parser.add_argument('--out', help='write the result as JSON here')
    args = parser.parse_args()
    if not compiled_ext_available():
        raise SystemExit('benchmark_ops: no compiled mmcv._ext here; set up '
                         'with RCNN_MMCV=full bash tools/setup_env.sh')
    if args.threads:
        torch.set_num_threads(args.threads)
    compiled = importlib.import_module('mmcv._ext')
    served = load_served()
    cfg = load_config(args.config)
    torch.manual_seed(args.seed)
    print(f'benchmark_ops: seed {args.seed}', flush=True)
    model, optim = build_detector(cfg, 'cpu')
    batch = synthetic_batch(args.batch_size, tuple(args.img_size),
                            args.num_gts,
                            cfg.model.roi_head.bbox_head.num_classes)
    result = dict(config=args.config, img_hw=args.img_size,
                  batch_size=args.batch_size, rounds=args.rounds,
                  seed=args.seed, threads=torch.get_num_threads(),
                  clock=args.clock)
    torch.manual_seed(0)
    with use_ext(compiled):
        ref = losses_and_grads(model, batch)
    torch.manual_seed(0)
    with use_ext(served):
        got = losses_and_grads(model, batch)
    result['train_outputs'] = max_diff(ref, got)
    with use_ext(compiled):
        ref = predictions(model, batch)
    with use_ext(served):
        got = predictions(model, batch)
    result['inference_outputs'] = max_diff(ref, got)
    for part, fn in (('train', train_step_fn(model, optim, batch)),
                     ('inference', infer_step_fn(model, batch))):
        r = abba(wrapped(fn, compiled), wrapped(fn, served),
                 torch.device('cpu'), rounds=args.rounds, warmup=1,
                 clock=args.clock,
                 log=lambda s, p=part: print(f'[{p}] {s}', flush=True))
        result[part] = dict(compiled_s=r['a']['median'],
                            served_s=r['b']['median'],
                            served_over_compiled=r['ratio'])
    print(json.dumps(result, indent=1, default=str))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1, default=str)


if __name__ == '__main__':
    main()
