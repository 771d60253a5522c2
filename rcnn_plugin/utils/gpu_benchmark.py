"""Throughput matrix of Faster R-CNN R50-FPN: stock mmdet vs the fast path.

Variants (arm x precision), all on one fixed synthetic batch per batch size:

- ``stock-tf32``: mmdet as configured, float32 with TF32 matmuls/convs.
- ``stock-fp16``: mmdet's own AMP (``AmpOptimWrapper``, float16).
- ``stock-bf16``: ``AmpOptimWrapper(dtype='bfloat16')``; mmcv's ops may
  lack bfloat16 kernels, in which case the error is recorded.
- ``fast-tf32`` / ``fast-bf16``: ``TorchvisionRoIExtractor`` and float32
  post-processing heads, the latter with ``BF16AmpOptimWrapper``.

Variants of one batch size run interleaved (forward order, then reversed).
Results are written after every cell, so a run cut short by its time budget
leaves everything measured so far.
"""
import json
import os
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from .benchmark import (
                        build_detector,
                        count_flops,
                        infer_step_fn,
                        interleave,
                        synthetic_batch,
                        train_step_fn,
)

__all__ = ['VARIANTS', 'r50_config', 'GPUBenchmark']

BASE = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
VARIANTS = ['stock-tf32', 'stock-fp16', 'stock-bf16', 'fast-tf32',
            'fast-bf16']
_OPTIM = {
    'tf32': dict(type='OptimWrapper'),
    'fp16': dict(type='AmpOptimWrapper', loss_scale='dynamic'),
    'bf16-stock': dict(type='AmpOptimWrapper', dtype='bfloat16'),
    'bf16-fast': dict(type='BF16AmpOptimWrapper'),
}


def r50_config(fast: bool, tiny: bool = False) -> Config:
    """mmdet's Faster R-CNN R50-FPN 1x COCO, random init, optionally fast.

    Args:
        fast (bool): Use the plugin's RoI extractor and float32
            post-processing heads.
        tiny (bool): Smoke-test size for CPU: ResNet-18, 32-channel FPN,
            50 proposals per image. Defaults to False.

    Returns:
        Config: The config (no pretrained download: backbone init is None).
    """
    # rcnn_plugin is imported (this module is part of it): types resolve.
    cfg = Config.fromstring(f"_base_ = '{BASE}'\n", file_format='.py')
    cfg.model.backbone.init_cfg = None
    if fast:
        cfg.model.roi_head.bbox_roi_extractor.type = 'TorchvisionRoIExtractor'
        cfg.model.rpn_head.type = 'FP32PostRPNHead'
        cfg.model.roi_head.bbox_head.type = 'FP32PostShared2FCBBoxHead'
    if tiny:
        _shrink(cfg.model)
    return cfg


def _shrink(model: Config) -> None:
    model.backbone.depth = 18
    model.neck.update(in_channels=[64, 128, 256, 512], out_channels=32)
    model.rpn_head.update(in_channels=32, feat_channels=32)
    model.roi_head.bbox_roi_extractor.out_channels = 32
    model.roi_head.bbox_head.update(in_channels=32, fc_out_channels=64)
    model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
    model.train_cfg.rcnn.sampler.num = 32
    model.test_cfg.rpn.update(nms_pre=200, max_per_img=50)


class GPUBenchmark:
    """Runs the matrix and keeps the JSON and markdown up to date.

    Args:
        device (str): ``'cuda'`` or ``'cpu'``.
        out_dir (str): Where ``benchmark_gpu.json`` and ``.md`` go.
        img_hw (List[int]): Image height and width.
        batch_sizes (List[int]): Training batch sizes.
        infer_batch (int): Inference batch size.
        rounds (int): Interleaved rounds per cell.
        iters (int): Steps per measurement.
        warmup (int): Untimed steps per variant and cell.
        budget_s (float): Stop starting new cells after this many seconds.
        tiny (bool): Build the smoke-test model (see :func:`r50_config`).
            Defaults to False.
    """

    def __init__(self, device: str, out_dir: str, img_hw: List[int],
                 batch_sizes: List[int], infer_batch: int, rounds: int,
                 iters: int, warmup: int, budget_s: float,
                 tiny: bool = False) -> None:
        self.tiny = tiny
        self.device = torch.device(device)
        self.out_dir = out_dir
        self.img_hw = tuple(img_hw)
        self.batch_sizes = batch_sizes
        self.infer_batch = infer_batch
        self.rounds, self.iters, self.warmup = rounds, iters, warmup
        self.deadline = time.monotonic() + budget_s
        self.start = time.monotonic()
        self.result: Dict[str, object] = dict(
            setup=dict(device=str(self.device), img_hw=list(img_hw),
                       rounds=rounds, iters=iters, warmup=warmup,
                       torch=torch.__version__, budget_s=budget_s,
                       tiny=tiny),
            train=[], inference=[], notes=[])
        self.models: Dict[str, torch.nn.Module] = {}

    def setup(self) -> None:
        """Select TF32 and cuDNN autotuning, build both models, count FLOPs."""
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision('high')  # TF32 matmuls
        torch.backends.cudnn.allow_tf32 = True
        if self.device.type == 'cuda':
            self.result['setup']['gpu'] = torch.cuda.get_device_name()
        for arm in ('stock', 'fast'):
            torch.manual_seed(0)
            model, _ = build_detector(r50_config(arm == 'fast', self.tiny),
                                      str(self.device))
            self.models[arm] = model
        self.models['fast'].load_state_dict(self.models['stock'].state_dict())
        batch = synthetic_batch(1, self.img_hw, 20, 80)
        self.result['setup']['forward_flops_per_image'] = count_flops(
            self.models['stock'], batch)
        self.save()

    def _optim(self, variant: str):
        arm, prec = variant.split('-')
        key = f'bf16-{arm}' if prec == 'bf16' else prec
        cfg = dict(_OPTIM[key], optimizer=dict(type='SGD', lr=0.,
                                               momentum=0.9))
        return build_optim_wrapper(self.models[arm], cfg)

    def _step(self, variant: str, batch: dict, train: bool):
        arm, prec = variant.split('-')
        model = self.models[arm]
        if train:
            return train_step_fn(model, self._optim(variant), batch)
        dtype = dict(fp16=torch.float16, bf16=torch.bfloat16).get(prec)
        return infer_step_fn(model, batch, dtype)

    def _warm(self, name: str, batch: dict, train: bool, cell: dict):
        try:
            if self.device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats()
                # what earlier variants keep (their optimizers' momentum)
                # and the batch stay allocated: the peak above it is this
                # variant's own
                resident = torch.cuda.memory_allocated()
            fn = self._step(name, batch, train)
            for _ in range(self.warmup):
                fn()
            if self.device.type == 'cuda':
                cell['peak_mem_gb'][name] = round(
                    (torch.cuda.max_memory_allocated() - resident) / 2**30,
                    2)
            return fn
        except Exception as exc:  # recorded; other variants still run
            cell['errors'][name] = f'{type(exc).__name__}: {exc}'[:300]
            if self.device.type == 'cuda':
                torch.cuda.empty_cache()
            return None

    def run_cell(self, part: str, batch_size: int) -> None:
        """Time every variant on one batch size, interleaved.

        Args:
            part (str): ``'train'`` or ``'inference'``.
            batch_size (int): Images per step.
        """
        cell = dict(batch_size=batch_size, errors={}, peak_mem_gb={})
        if time.monotonic() > self.deadline:
            cell['skipped'] = 'time budget spent'
            self.result[part].append(cell)
            return self.save()
        batch = synthetic_batch(batch_size, self.img_hw, 20, 80)
        fns = {}
        for name in VARIANTS:
            fn = self._warm(name, batch, part == 'train', cell)
            if fn is not None:
                fns[name] = fn
        times = interleave(fns, self.device, self.rounds, self.iters)
        cell['img_per_s'] = {
            n: batch_size / statistics.median(t) for n, t in times.items()}
        cell['s_per_iter'] = {n: statistics.median(t)
                              for n, t in times.items()}
        ref = times.get('stock-tf32')
        if ref:
            cell['speedup_vs_stock_tf32'] = {
                n: statistics.median(r / t for r, t in zip(ref, ts))
                for n, ts in times.items()}
        self.result[part].append(cell)
        self.save()

    def run(self) -> Dict[str, object]:
        """Inference first (cheap), then training from small to large batch.

        Returns:
            Dict[str, object]: The result, also saved as JSON and markdown.
        """
        self.setup()
        self.run_cell('inference', self.infer_batch)
        for batch_size in self.batch_sizes:
            self.run_cell('train', batch_size)
        self.result['setup']['wall_s'] = time.monotonic() - self.start
        self.save()
        return self.result

    def save(self) -> None:
        """Write ``benchmark_gpu.json`` and ``benchmark_gpu.md``."""
        os.makedirs(self.out_dir, exist_ok=True)
        with open(osp.join(self.out_dir, 'benchmark_gpu.json'), 'w') as f:
            json.dump(self.result, f, indent=1, default=str)
        with open(osp.join(self.out_dir, 'benchmark_gpu.md'), 'w') as f:
            f.write(markdown(self.result) + '\n')


def _tflops(img_s: float, macs: Optional[int], train: bool) -> str:
    # mmengine counts a multiply-add as one FLOP; training ~ 3x forward.
    if not macs:
        return 'n/a'
    return f'{img_s * macs * 2 * (3 if train else 1) / 1e12:.1f}'


def markdown(result: Dict[str, object]) -> str:
    """Markdown table: img/s, speed-up over stock TF32, est. TFLOP/s.

    Args:
        result (Dict[str, object]): From :meth:`GPUBenchmark.run`.

    Returns:
        str: The table, with errors and skipped cells listed below it.
    """
    macs = (result['setup'].get('forward_flops_per_image') or {}).get(
        'forward_flops')
    lines = ['| part | batch | variant | img/s | x stock-tf32 | '
             'est. TFLOP/s | peak GB above resident |',
             '|---|---|---|---|---|---|---|']
    notes = []
    for part in ('inference', 'train'):
        for cell in result[part]:
            bs = cell['batch_size']
            if 'skipped' in cell:
                notes.append(f"{part} batch {bs}: {cell['skipped']}")
                continue
            for name, img_s in cell.get('img_per_s', {}).items():
                speed = cell.get('speedup_vs_stock_tf32', {}).get(name)
                speed = f'{speed:.2f}' if speed else '-'
                lines.append(
                    f'| {part} | {bs} | {name} | {img_s:.1f} | {speed} | '
                    f"{_tflops(img_s, macs, part == 'train')} | "
                    f"{cell['peak_mem_gb'].get(name, '-')} |")
            for name, err in cell['errors'].items():
                notes.append(f'{part} batch {bs} {name} failed: {err}')
    return '\n'.join(lines + [''] + [f'- {n}' for n in notes])
