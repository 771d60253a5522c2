"""Time to switch adapters on one loaded model against rebuilding it.

Example::

    python tools/analysis/benchmark_adapter_switch.py \
        configs/bccd_peft/faster-rcnn_mobilenetv2_fpn-128_lora-r4_8e_bccd.py

Builds the config's PEFT model (backbone ``init_cfg`` off: random base
weights, no download), saves its base weights and two adapters with moved
trainable tensors to a temporary folder, then times, per round:

- ``switch``: :meth:`AdapterBank.switch` between the two adapters (tensor
  copies into the loaded model);
- ``reload``: what serving a domain costs without the bank: build the
  model, load the base checkpoint, load the adapter (hash checked).

It prints the medians and the file sizes. Wall clock, ``--threads`` torch
threads; the machine's load shows in the absolute numbers.
"""
import argparse
import copy
import os.path as osp
import statistics
import tempfile
import time

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.logging import MMLogger

from rcnn_plugin.models.peft import load_adapter, save_adapter
from rcnn_plugin.models.peft.adapter_bank import AdapterBank


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a PEFTDetector config')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    return parser.parse_args()


def _build(cfg: Config) -> torch.nn.Module:
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('backbone', {}).get('init_cfg') is not None:
        model_cfg.backbone.init_cfg = None
    return MODELS.build(model_cfg).eval()


def _adapter(model: torch.nn.Module, seed: int, path: str) -> None:
    tuned = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tuned.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn(p.shape, generator=g))
    save_adapter(tuned, path, dict(base_name='base.pth'))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    register_all_modules()
    MMLogger.get_instance('mmengine', log_level='WARNING')
    cfg = Config.fromfile(args.config)
    torch.manual_seed(0)
    model = _build(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        base = osp.join(tmp, 'base.pth')
        torch.save(dict(state_dict=model.state_dict()), base)
        paths = [osp.join(tmp, f'{n}.pth') for n in ('a', 'b')]
        for seed, path in enumerate(paths):
            _adapter(model, seed, path)
        bank = AdapterBank(model)
        start = time.perf_counter()
        for path in paths:
            bank.add(path)
        add_s = time.perf_counter() - start
        switch, reload = [], []
        for _ in range(args.rounds):
            switch += [bank.switch('a'), bank.switch('b')]
            start = time.perf_counter()
            fresh = _build(cfg)
            fresh.load_state_dict(torch.load(base, weights_only=True)
                                  ['state_dict'])
            load_adapter(fresh, paths[0])
            reload.append(time.perf_counter() - start)
        sizes = [osp.getsize(p) / 2**20 for p in [base] + paths]
    print(f'config: {args.config}, {args.threads} torch thread(s), '
          f'{args.rounds} rounds')
    print(f'base checkpoint {sizes[0]:.2f} MiB, adapter {sizes[1]:.2f} MiB')
    print(f'add 2 adapters (load, architecture and base hash checks): '
          f'{add_s:.3f} s')
    print(f'switch adapter in place, median: '
          f'{statistics.median(switch) * 1e3:.2f} ms')
    print(f'rebuild + load base + load adapter, median: '
          f'{statistics.median(reload):.3f} s')


if __name__ == '__main__':
    main()
