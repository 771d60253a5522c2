"""Same-process timing of detectors: training step, inference, pipeline.

Two arms A and B (two configs, or one config with two settings) run in one
process on one fixed synthetic batch: fixed image size, fixed number of
ground-truth boxes, fixed seed. After warm-up, each round times A, B, B, A
(ABBA), so a drift in machine load hits both arms alike; the per-round
ratio B/A is summarised by its median and interquartile range.

The optimizer's learning rate is set to 0 so that every round does the
same work (the update arithmetic still runs, the weights do not move and
the RPN keeps proposing the same boxes).
"""
import copy
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

__all__ = [
    'synchronize', 'build_detector', 'synthetic_batch', 'train_step_fn',
    'infer_step_fn', 'time_once', 'abba', 'time_repeated', 'summarize',
    'count_flops', 'count_params', 'share_weights', 'interleave'
]

StepFn = Callable[[], None]


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that a wall clock measures them.

    Args:
        device (torch.device): The device the model runs on.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _quiet_logger() -> None:
    # init_weights() and the optimizer builder log every parameter at INFO.
    if not MMLogger.check_instance_created('rcnn_benchmark'):
        MMLogger.get_instance('rcnn_benchmark', log_level='WARNING')
    else:
        MMLogger.get_instance('rcnn_benchmark')  # make it current again


def build_detector(cfg: Config, device: str,
                   pretrained: bool = False) -> Tuple[nn.Module, OptimWrapper]:
    """Build ``cfg.model`` and ``cfg.optim_wrapper`` with learning rate 0.

    Args:
        cfg (Config): A detector config (``model`` and ``optim_wrapper``).
        device (str): ``'cpu'`` or ``'cuda'``.
        pretrained (bool): Keep the backbone's ``init_cfg``; otherwise the
            backbone is randomly initialised, which costs the same time.
            Defaults to False.

    Returns:
        Tuple[nn.Module, OptimWrapper]: The model, on ``device`` and in
        train mode, and its optimizer wrapper.
    """
    _quiet_logger()
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = copy.deepcopy(cfg.model)
    if not pretrained:
        model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(device).train()
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.optimizer.lr = 0.
    optim_cfg.pop('clip_grad', None)
    return model, build_optim_wrapper(model, optim_cfg)


def synthetic_batch(batch_size: int,
                    img_hw: Tuple[int, int],
                    num_gts: int,
                    num_classes: int,
                    with_mask: bool = False) -> dict:
    """A fixed batch of random images and boxes, as a data loader yields.

    Images, boxes and masks come from mmdet's ``demo_mm_inputs`` (seeded
    with 0); the labels are drawn here with a fixed seed, because
    ``demo_mm_inputs`` draws from ``1 .. num_classes - 1`` (never class 0,
    and an error for one class).

    Args:
        batch_size (int): Number of images N.
        img_hw (Tuple[int, int]): Image height and width.
        num_gts (int): Ground-truth boxes per image.
        num_classes (int): Labels are drawn from ``range(num_classes)``.
        with_mask (bool): Add instance masks (Mask R-CNN). Defaults to False.

    Returns:
        dict: ``inputs`` (N uint8 tensors (3, H, W)) and ``data_samples``.
    """
    if batch_size < 1 or num_gts < 0:
        raise ValueError(f'batch_size must be >= 1 and num_gts >= 0, got '
                         f'{batch_size} and {num_gts}')
    if num_classes < 1:
        raise ValueError(f'num_classes must be >= 1, got {num_classes}')
    batch = demo_mm_inputs(
        batch_size=batch_size,
        image_shapes=[(3, *img_hw)] * batch_size,
        num_items=[num_gts] * batch_size,
        num_classes=max(num_classes, 2),
        with_mask=with_mask)
    gen = torch.Generator().manual_seed(0)
    for sample in batch['data_samples']:
        sample.gt_instances.labels = torch.randint(
            num_classes, (num_gts, ), generator=gen)
    return batch


def _to_device(batch: dict, device: str) -> dict:
    inputs = [img.to(device) for img in batch['inputs']]
    samples = [s.to(device) for s in batch['data_samples']]
    return dict(inputs=inputs, data_samples=samples)


def train_step_fn(model: nn.Module, optim_wrapper: OptimWrapper,
                  batch: dict) -> StepFn:
    """One runner training iteration: preprocess, loss, backward, update.

    Args:
        model (nn.Module): A detector in train mode.
        optim_wrapper (OptimWrapper): Its optimizer wrapper (an AMP
            wrapper adds its autocast context, as in training).
        batch (dict): A batch from :func:`synthetic_batch`.

    Returns:
        Callable[[], None]: Runs one step.
    """
    device = next(model.parameters()).device
    data = _to_device(batch, str(device))

    def step() -> None:
        model.train()
        model.train_step(data, optim_wrapper)

    return step


def infer_step_fn(model: nn.Module, batch: dict,
                  autocast_dtype: Optional[torch.dtype] = None) -> StepFn:
    """One test iteration: preprocess and predict, without gradients.

    Args:
        model (nn.Module): A detector.
        batch (dict): A batch from :func:`synthetic_batch`.
        autocast_dtype (Optional[torch.dtype]): Run under
            ``torch.autocast`` with this dtype. Defaults to None.

    Returns:
        Callable[[], None]: Runs one step.
    """
    device = next(model.parameters()).device
    data = _to_device(batch, str(device))

    def step() -> None:
        model.eval()
        with torch.no_grad(), torch.autocast(
                device.type, dtype=autocast_dtype or torch.bfloat16,
                enabled=autocast_dtype is not None):
            model.test_step(data)

    return step


CLOCKS = dict(wall=time.perf_counter, process=time.process_time)


def time_once(fn: StepFn, device: torch.device, iters: int = 1,
              clock: str = 'wall') -> float:
    """Seconds per call of ``fn``, averaged over ``iters`` calls.

    Args:
        fn (Callable[[], None]): The step.
        device (torch.device): Synchronised before and after.
        iters (int): Calls per measurement. Defaults to 1.
        clock (str): ``'wall'`` (elapsed time) or ``'process'`` (CPU time
            of this process: on a shared CPU machine with one torch thread,
            it counts the work and not the time spent waiting for a core;
            meaningless for CUDA). Defaults to 'wall'.

    Returns:
        float: Seconds per call.
    """
    if clock not in CLOCKS:
        raise ValueError(f'clock must be one of {sorted(CLOCKS)}, got '
                         f'{clock!r}')
    if clock == 'process' and device.type == 'cuda':
        raise ValueError("clock='process' does not measure CUDA kernels")
    now = CLOCKS[clock]
    synchronize(device)
    start = now()
    for _ in range(iters):
        fn()
    synchronize(device)
    return (now() - start) / iters


def summarize(values: List[float]) -> Dict[str, float]:
    """Median, quartiles and interquartile range of ``values``.

    Args:
        values (List[float]): At least one value.

    Returns:
        Dict[str, float]: ``median``, ``q1``, ``q3``, ``iqr``, ``n``.
    """
    if not values:
        raise ValueError('summarize needs at least one value')
    if len(values) == 1:
        q1 = q3 = values[0]
    else:
        q1, _, q3 = statistics.quantiles(values, n=4, method='inclusive')
    return dict(median=statistics.median(values), q1=q1, q3=q3,
                iqr=q3 - q1, n=len(values))


def abba(fn_a: StepFn, fn_b: StepFn, device: torch.device, rounds: int = 15,
         warmup: int = 2, iters: int = 1,
         log: Optional[Callable[[str], None]] = None,
         clock: str = 'wall') -> Dict[str, object]:
    """Interleave A and B as A, B, B, A per round; summarise B/A.

    Args:
        fn_a (Callable[[], None]): Arm A (the reference).
        fn_b (Callable[[], None]): Arm B.
        device (torch.device): Synchronised around each measurement.
        rounds (int): Measured rounds. Defaults to 15.
        warmup (int): Untimed calls of each arm first. Defaults to 2.
        iters (int): Calls per measurement. Defaults to 1.
        log (Optional[Callable[[str], None]]): Called with a progress line
            after each round. Defaults to None.
        clock (str): See :func:`time_once`. Defaults to 'wall'.

    Returns:
        Dict[str, object]: ``ratio`` (summary of per-round B/A), ``a`` and
        ``b`` (summaries of seconds per call) and the raw ``rounds``.
    """
    if rounds < 1:
        raise ValueError(f'rounds must be >= 1, got {rounds}')
    for _ in range(warmup):
        fn_a()
        fn_b()
    times_a, times_b, ratios = [], [], []
    for _ in range(rounds):
        a1 = time_once(fn_a, device, iters, clock)
        b1 = time_once(fn_b, device, iters, clock)
        b2 = time_once(fn_b, device, iters, clock)
        a2 = time_once(fn_a, device, iters, clock)
        t_a, t_b = (a1 + a2) / 2, (b1 + b2) / 2
        times_a.append(t_a)
        times_b.append(t_b)
        ratios.append(t_b / t_a)
        if log is not None:
            log(f'round {len(ratios)}/{rounds}: A {t_a:.3f} s, '
                f'B {t_b:.3f} s, B/A {t_b / t_a:.3f}')
    return dict(ratio=summarize(ratios), a=summarize(times_a),
                b=summarize(times_b),
                rounds=[dict(a=a, b=b) for a, b in zip(times_a, times_b)])


def interleave(fns: Dict[str, StepFn], device: torch.device,
               rounds: int = 2, iters: int = 1) -> Dict[str, List[float]]:
    """ABBA for more than two arms: forward order, then reversed, and so on.

    Args:
        fns (Dict[str, Callable[[], None]]): Arms by name (warmed up).
        device (torch.device): Synchronised around each measurement.
        rounds (int): Measured rounds; odd rounds run in reverse order.
            Defaults to 2.
        iters (int): Calls per measurement. Defaults to 1.

    Returns:
        Dict[str, List[float]]: Seconds per call, per round, by arm.
    """
    names = list(fns)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(time_once(fns[name], device, iters))
    return times


def time_repeated(fn: StepFn, device: torch.device, rounds: int = 15,
                  warmup: int = 2, iters: int = 1,
                  clock: str = 'wall') -> Dict[str, float]:
    """Seconds per call of one arm, over ``rounds`` measurements.

    Args:
        fn (Callable[[], None]): The step.
        device (torch.device): Synchronised around each measurement.
        rounds (int): Measurements. Defaults to 15.
        warmup (int): Untimed calls first. Defaults to 2.
        iters (int): Calls per measurement. Defaults to 1.
        clock (str): See :func:`time_once`. Defaults to 'wall'.

    Returns:
        Dict[str, float]: Summary of seconds per call.
    """
    for _ in range(warmup):
        fn()
    return summarize(
        [time_once(fn, device, iters, clock) for _ in range(rounds)])


def count_params(model: nn.Module) -> Dict[str, int]:
    """Total and trainable parameter counts.

    Args:
        model (nn.Module): Any model.

    Returns:
        Dict[str, int]: ``total`` and ``trainable``.
    """
    params = list(model.parameters())
    return dict(total=sum(p.numel() for p in params),
                trainable=sum(p.numel() for p in params if p.requires_grad))


def count_flops(model: nn.Module, batch: dict) -> Dict[str, object]:
    """Forward FLOPs of one image (``mode='tensor'``), as mmdet's get_flops.

    mmengine's counter traces the model; RoIAlign and NMS have no FLOP
    formula there and count as 0, and post-processing is not traced.

    Args:
        model (nn.Module): A detector.
        batch (dict): A batch from :func:`synthetic_batch`; its first image
            is used.

    Returns:
        Dict[str, object]: ``forward_flops`` per image (int) or ``error``.
    """
    from mmengine.analysis import get_model_complexity_info
    device = next(model.parameters()).device
    one = _to_device(
        dict(inputs=batch['inputs'][:1],
             data_samples=batch['data_samples'][:1]), str(device))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            data = model.data_preprocessor(one, False)
            model.forward = _tensor_forward(model, data['data_samples'])
            info = get_model_complexity_info(
                model, inputs=data['inputs'], show_table=False,
                show_arch=False)
        return dict(forward_flops=int(info['flops']))
    except Exception as exc:  # tracing can fail on exotic heads
        return dict(forward_flops=None, error=f'{type(exc).__name__}: {exc}')
    finally:
        model.__dict__.pop('forward', None)
        model.train(was_training)


def _tensor_forward(model: nn.Module, data_samples: list) -> Callable:
    forward = type(model).forward

    def run(inputs: torch.Tensor):
        return forward(model, inputs, data_samples, mode='tensor')

    return run


def share_weights(src: nn.Module, dst: nn.Module) -> bool:
    """Load ``src``'s weights into ``dst`` when their state dicts match.

    Args:
        src (nn.Module): Arm A.
        dst (nn.Module): Arm B.

    Returns:
        bool: Whether the weights were copied (same keys and shapes).
    """
    a, b = src.state_dict(), dst.state_dict()
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return False
    dst.load_state_dict(a)
    return True
