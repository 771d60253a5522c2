"""A/B benchmark of two detector configs, as ``tools/analysis/benchmark.py``.

Builds both arms in one process, times the training step, the inference
step and the data pipeline with :func:`~rcnn_plugin.utils.benchmark.abba`,
and formats the result as JSON-ready dicts and a markdown table.
"""
import copy
import itertools
import sys
import time
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config

from .benchmark import (
    abba,
    build_detector,
    count_flops,
    count_params,
    infer_step_fn,
    share_weights,
    synthetic_batch,
    time_repeated,
    train_step_fn,
)
from .config_types import cfg_type_name
from .torch_compile import compile_backbone_neck

__all__ = ['Arm', 'prepare_arm', 'pipeline_step_fn', 'run_benchmark',
           'markdown_table']


def compile_hook_args(cfg: Config) -> Optional[dict]:
    """``torch.compile`` arguments of a ``CompileBackboneNeckHook`` in
    ``cfg.custom_hooks``, or None when the config has none.

    Args:
        cfg (Config): A detector config.

    Returns:
        Optional[dict]: The hook's arguments without ``type``.
    """
    for hook in cfg.get('custom_hooks', None) or []:
        if cfg_type_name(hook) == 'CompileBackboneNeckHook':
            args = {k: v for k, v in hook.items() if k != 'type'}
            return dict(dict(backend='inductor'), **args)
    return None


class Arm:
    """One side of an A/B comparison: a model, its steps and its stats.

    Args:
        name (str): Label in the report.
        cfg (Config): The detector config.
        device (str): ``'cpu'`` or ``'cuda'``.
        batch (dict): A fixed batch from :func:`synthetic_batch`.
    """

    def __init__(self, name: str, cfg: Config, device: str,
                 batch: dict) -> None:
        self.name = name
        self.cfg = cfg
        self.model, self.optim_wrapper = build_detector(cfg, device)
        modules = cfg.get('efficient_conv_bn_eval', None)
        if modules:  # as mmengine's Runner.train() does
            from mmengine.model.efficient_conv_bn_eval import (
                turn_on_efficient_conv_bn_eval,
            )
            turn_on_efficient_conv_bn_eval(self.model, modules)
        compile_cfg = compile_hook_args(cfg)
        if compile_cfg is not None:  # as CompileBackboneNeckHook does
            compile_backbone_neck(self.model, **compile_cfg)
        self.amp_dtype = amp_dtype(self.optim_wrapper, device)
        self.batch = batch

    def steps(self) -> Dict[str, object]:
        """The training and inference step functions of this arm.

        Returns:
            Dict[str, object]: ``train`` and ``inference`` callables.
        """
        return dict(
            train=train_step_fn(self.model, self.optim_wrapper, self.batch),
            inference=infer_step_fn(self.model, self.batch, self.amp_dtype))

    def stats(self) -> Dict[str, object]:
        """Parameter counts, forward FLOPs per image and the AMP dtype.

        Returns:
            Dict[str, object]: ``params``, ``flops`` and ``amp_dtype``.
        """
        return dict(params=count_params(self.model),
                    flops=count_flops(self.model, self.batch),
                    amp_dtype=str(self.amp_dtype) if self.amp_dtype else None)


def amp_dtype(optim_wrapper, device: str) -> Optional[torch.dtype]:
    """The dtype an optimizer wrapper trains in under autocast, or None.

    mmengine's ``AmpOptimWrapper`` without ``dtype`` keeps ``cast_dtype``
    None and its autocast picks the device's default (float16 on CUDA,
    bfloat16 on CPU): the arm is labelled, and its inference timed, in
    that dtype, not as fp32.

    Args:
        optim_wrapper: The arm's optimizer wrapper.
        device (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        torch.dtype | None: None without AMP.
    """
    from mmengine.optim import AmpOptimWrapper
    dtype = getattr(optim_wrapper, 'cast_dtype', None)
    if dtype is None and isinstance(optim_wrapper, AmpOptimWrapper):
        dtype = (torch.get_autocast_dtype('cuda') if device.startswith('cuda')
                 else torch.bfloat16)
    return dtype


def prepare_arm(name: str, cfg: Config, device: str, batch: dict) -> Arm:
    """Build an :class:`Arm`, seeding torch first so inits repeat.

    Args:
        name (str): Label in the report.
        cfg (Config): The detector config.
        device (str): ``'cpu'`` or ``'cuda'``.
        batch (dict): A fixed batch from :func:`synthetic_batch`.

    Returns:
        Arm: The built arm.
    """
    torch.manual_seed(0)
    return Arm(name, cfg, device, batch)


def pipeline_step_fn(cfg: Config, samples: int = 4):
    """Fetch ``samples`` items from the training dataset (pipeline only).

    Args:
        cfg (Config): Config with ``train_dataloader.dataset``.
        samples (int): Items per step, cycling through the dataset.
            Defaults to 4.

    Returns:
        Callable[[], None] | str: The step, or why it cannot run (for
        example, the dataset's files are absent).
    """
    from mmdet.registry import DATASETS
    try:
        dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
        if len(dataset) == 0:
            return 'the training dataset is empty'
    except Exception as exc:  # the report says why it was skipped
        return f'dataset not built: {type(exc).__name__}: {exc}'
    indices = itertools.cycle(range(len(dataset)))

    def step() -> None:
        for _ in range(samples):
            dataset[next(indices)]

    return step


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _compare(fn_a, fn_b, device, rounds, warmup,
             clock='wall') -> Dict[str, object]:
    if fn_b is None:
        return dict(a=time_repeated(fn_a, device, rounds, warmup,
                                    clock=clock))
    return abba(fn_a, fn_b, device, rounds, warmup, log=_log, clock=clock)


def _pipelines(cfg_a: Config, cfg_b: Optional[Config], device, rounds,
               warmup, samples, clock='wall') -> Dict[str, object]:
    fn_a = pipeline_step_fn(cfg_a, samples)
    if isinstance(fn_a, str):
        return dict(skipped=fn_a)
    fn_b = None
    if cfg_b is not None:
        fn_b = pipeline_step_fn(cfg_b, samples)
        if isinstance(fn_b, str):
            return dict(skipped=f'B: {fn_b}')
    res = _compare(fn_a, fn_b, torch.device('cpu'), rounds, warmup, clock)
    res['samples_per_step'] = samples
    return res


def run_benchmark(cfg_a: Config,
                  cfg_b: Optional[Config] = None,
                  device: str = 'cpu',
                  img_hw: Tuple[int, int] = (480, 640),
                  batch_size: int = 2,
                  num_gts: int = 10,
                  rounds: int = 15,
                  warmup: int = 2,
                  parts: Tuple[str, ...] = ('train', 'inference',
                                            'pipeline'),
                  pipeline_samples: int = 4,
                  clock: str = 'wall') -> Dict[str, object]:
    """Time config A (and B, interleaved ABBA) on one fixed batch.

    Args:
        cfg_a (Config): Reference config.
        cfg_b (Optional[Config]): Compared config. Defaults to None.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to 'cpu'.
        img_hw (Tuple[int, int]): Image height and width.
            Defaults to (480, 640).
        batch_size (int): Images per step. Defaults to 2.
        num_gts (int): Ground-truth boxes per image. Defaults to 10.
        rounds (int): Measured rounds per part. Defaults to 15.
        warmup (int): Untimed calls per arm first. Defaults to 2.
        parts (Tuple[str, ...]): Any of ``'train'``, ``'inference'``,
            ``'pipeline'``. Defaults to all three.
        pipeline_samples (int): Dataset items per pipeline step.
            Defaults to 4.
        clock (str): ``'wall'`` or ``'process'`` (CPU time of this
            process, for shared CPU machines; see ``time_once``).
            Defaults to 'wall'.

    Returns:
        Dict[str, object]: ``setup``, ``arms`` (stats per arm) and one
        entry per part with seconds per step (and B/A ratios).
    """
    unknown = set(parts) - {'train', 'inference', 'pipeline'}
    if unknown:
        raise ValueError(f'unknown parts {sorted(unknown)}')
    num_classes = cfg_a.model.roi_head.bbox_head.num_classes
    with_mask = 'mask_head' in cfg_a.model.roi_head
    batch = synthetic_batch(batch_size, img_hw, num_gts, num_classes,
                            with_mask)
    arms = [prepare_arm('A', cfg_a, device, batch)]
    if cfg_b is not None:
        arms.append(prepare_arm('B', cfg_b, device, batch))
    result = dict(setup=dict(
        device=device, img_hw=list(img_hw), batch_size=batch_size,
        num_gts=num_gts, rounds=rounds, warmup=warmup, clock=clock,
        torch=torch.__version__, threads=torch.get_num_threads()))
    if len(arms) == 2:
        result['setup']['same_weights'] = share_weights(
            arms[0].model, arms[1].model)
    result['arms'] = {arm.name: arm.stats() for arm in arms}
    dev = torch.device(device)
    steps = [arm.steps() for arm in arms]
    for part in ('train', 'inference'):
        if part in parts:
            start = time.perf_counter()
            _log(f'timing {part} steps')
            fns = [s[part] for s in steps] + [None]
            result[part] = _compare(fns[0], fns[1], dev, rounds, warmup,
                                    clock)
            result[part]['wall_s'] = time.perf_counter() - start
    if 'pipeline' in parts:
        result['pipeline'] = _pipelines(cfg_a, cfg_b, dev, rounds, warmup,
                                        pipeline_samples, clock)
    return result


def _fmt(summary: Dict[str, float], scale: float = 1e3) -> str:
    return (f"{summary['median'] * scale:.1f} "
            f"[{summary['q1'] * scale:.1f}, {summary['q3'] * scale:.1f}]")


def markdown_table(result: Dict[str, object]) -> str:
    """The benchmark result as a markdown table (milliseconds, B/A).

    Args:
        result (Dict[str, object]): From :func:`run_benchmark`.

    Returns:
        str: A table with one row per part: median time per step with its
        quartiles for each arm and the median per-round ratio B/A.
    """
    lines = ['| part | A ms/step [q1, q3] | B ms/step [q1, q3] | '
             'B/A median [q1, q3] |', '|---|---|---|---|']
    for part in ('train', 'inference', 'pipeline'):
        res = result.get(part)
        if res is None:
            continue
        if 'skipped' in res:
            lines.append(f"| {part} | skipped: {res['skipped']} | | |")
            continue
        b = _fmt(res['b']) if 'b' in res else '-'
        ratio = '-'
        if 'ratio' in res:
            r = res['ratio']
            ratio = (f"{r['median']:.3f} [{r['q1']:.3f}, {r['q3']:.3f}]")
        lines.append(f"| {part} | {_fmt(res['a'])} | {b} | {ratio} |")
    rows: List[str] = []
    for name, stats in result.get('arms', {}).items():
        flops = stats['flops'].get('forward_flops')
        gflops = f'{flops / 1e9:.2f}' if flops else 'n/a'
        rows.append(f"| {name} | {stats['params']['total'] / 1e6:.2f} | "
                    f"{gflops} | {stats['amp_dtype'] or 'fp32'} |")
    lines += ['', '| arm | params (M) | forward GFLOPs / image | amp |',
              '|---|---|---|---|'] + rows
    return '\n'.join(lines)
