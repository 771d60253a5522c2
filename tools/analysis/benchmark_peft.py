"""Cost of full fine-tuning and the BCCD PEFT methods, in one process.

For each config: trainable parameters (and % of the plain model), the size
of what a fine-tune must store (the full state dict for full fine-tuning,
the adapter checkpoint otherwise), peak RSS during a training step, and the
training-step time relative to full fine-tuning, measured interleaved in
the same process (ABBA order per round: full, A, B, C, C, B, A, full) on a
synthetic batch the size of the real one (BCCD: 4 images of 640x480, 20
boxes each). Accuracy is not measured here: that needs the trainings.

Example::

    python tools/analysis/benchmark_peft.py --rounds 2
    python tools/analysis/benchmark_peft.py --rounds 2 \
        --variants lora-r4 conv-adapter prompt bias-norm
"""
import argparse
import json
import os
import os.path as osp
import statistics
import tempfile
import time

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper

from rcnn_plugin.models.peft import save_adapter

BASE = 'configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py'
PEFT = 'configs/bccd_peft/faster-rcnn_mobilenetv2_fpn-128_{}_8e_bccd.py'
METHODS = ['head-only', 'lora-r4', 'lora-r8', 'lora-r4-fpn', 'conv-adapter',
           'prompt', 'bias-norm']
DEFAULT = ['head-only', 'lora-r4', 'lora-r8']


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=2,
                        help='ABBA rounds of the step-time comparison')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--size', type=int, nargs=2, default=[480, 640],
                        metavar=('H', 'W'))
    parser.add_argument('--boxes', type=int, default=20,
                        help='ground-truth boxes per image')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch decides)')
    parser.add_argument('--variants', nargs='+', default=DEFAULT,
                        choices=METHODS,
                        help='configs/bccd_peft methods to compare with '
                        'full fine-tuning (always measured)')
    return parser.parse_args()


def rss_mib(field: str = 'VmRSS') -> float:
    """A field of /proc/self/status, in MiB (Linux)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'{field} not in /proc/self/status')


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if refused."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def build(path: str):
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None  # timing and sizes need no weights
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def step(model, optim_wrapper, packed) -> float:
    start = time.perf_counter()
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    optim_wrapper.update_params(loss)
    return time.perf_counter() - start


def memory_in_child(path: str, packed) -> dict:
    """Peak RSS of a training step, in a forked child with only this model.

    The child builds the model, takes one warm-up step, resets the peak
    (VmHWM) and takes a second step. Forking before the parent builds any
    model keeps the children's starting memory equal.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        model, optim_wrapper = build(path)
        step(model, optim_wrapper, packed)
        before = rss_mib()
        ok = reset_peak_rss()
        step(model, optim_wrapper, packed)
        out = dict(peak=rss_mib('VmHWM') if ok else float('nan'),
                   delta=(rss_mib('VmHWM') - before) if ok else float('nan'))
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        raise RuntimeError(f'memory measurement of {path} failed ({status})')
    return json.loads(text)


def stored_bytes(name: str, model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'x.pth')
        if name == 'full':
            torch.save(model.state_dict(), path)
        else:
            save_adapter(model, path)
        return osp.getsize(path)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    # Quiet: init_weights and the parameter tables log at INFO.
    MMLogger.get_instance('benchmark_peft', log_level='WARNING')
    packed = demo_mm_inputs(
        batch_size=args.batch_size,
        image_shapes=[(3, *args.size)] * args.batch_size,
        num_items=[args.boxes] * args.batch_size, num_classes=3)
    variants = [('full', BASE)] + [(m, PEFT.format(m)) for m in dict.fromkeys(
        args.variants)]
    rows = {name: memory_in_child(path, packed) for name, path in variants}
    runs = {name: build(path) for name, path in variants}
    plain_params = sum(p.numel() for p in runs['full'][0].parameters())
    for name, (model, optim_wrapper) in runs.items():
        trainable = sum(p.numel() for p in model.parameters()
                        if p.requires_grad)
        rows[name].update(
            trainable=trainable, pct=100.0 * trainable / plain_params,
            mib=stored_bytes(name, model) / 2**20,
            first=step(model, optim_wrapper, packed), times=[])
    order = [n for n, _ in variants]
    for _ in range(args.rounds):
        for name in order + order[::-1]:
            rows[name]['times'].append(step(*runs[name], packed))
    report(args, rows, plain_params)


def report(args, rows, plain_params) -> None:
    full = rows['full']['times']
    print(f'\n{args.batch_size} images of {args.size[1]}x{args.size[0]}, '
          f'{args.boxes} boxes each; {args.rounds} ABBA rounds; '
          f'torch threads {torch.get_num_threads()}; plain model '
          f'{plain_params:,} parameters')
    print('| variant | trainable params | % of model | stored per '
          'fine-tune (MiB) | peak RSS (MiB) | RSS added by the '
          '2nd step (MiB) | step time (s), median | step-time ratio vs full |')
    print('|---|---|---|---|---|---|---|---|')
    for name, r in rows.items():
        # Per ABBA round: (A1 + A2) / (full1 + full2); median over rounds.
        t = r['times']
        ratios = [(t[i] + t[i + 1]) / (full[i] + full[i + 1])
                  for i in range(0, len(t), 2)]
        print(f'| {name} | {r["trainable"]:,} | {r["pct"]:.1f} | '
              f'{r["mib"]:.2f} | {r["peak"]:.0f} | {r["delta"]:.0f} | '
              f'{statistics.median(r["times"]):.2f} | '
              f'{statistics.median(ratios):.2f} |')
    print(f'host: {os.cpu_count()} CPUs, load average '
          f'{os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
    main()
