"""``torch.compile`` of the backbone and the neck only.

``torch.compile`` of a whole two-stage detector breaks its graph at every
data-dependent step (proposal sampling, NMS, per-image RoI lists; mmdet
issue #11050). The backbone and the neck are plain convolutions on a
``(N, 3, H, W)`` batch and compile whole. mmengine's ``Runner`` has
``compile=dict(...)``, but it compiles the model's ``train_step`` /
``test_step`` methods (``Runner._maybe_compile``), not a submodule; this
hook takes the same arguments (those of ``torch.compile``) and compiles
``model.backbone`` and ``model.neck`` in place with
``nn.Module.compile``, so the state-dict keys (and the checkpoints) stay
those of the plain model::

    custom_hooks = [dict(type='CompileBackboneNeckHook')]  # inductor
    # or: dict(type='CompileBackboneNeckHook', backend='eager', dynamic=True)

``tools/analysis/benchmark.py CONFIG --compile`` times it against eager,
and ``tools/analysis/graph_breaks.py`` counts the graph breaks of the
whole detector.
"""
from typing import List, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

from rcnn_plugin.utils.torch_compile import compile_backbone_neck


@HOOKS.register_module()
class CompileBackboneNeckHook(Hook):
    """Compile the detector's backbone and neck before the run.

    The first iterations (and each new input size with ``dynamic=False``)
    are slow while the graphs compile; CPU ``inductor`` needs a C++
    compiler (gcc).

    Args:
        backend (str): ``torch.compile`` backend. Defaults to 'inductor'.
        mode (str, optional): ``'default'``, ``'reduce-overhead'``,
            ``'max-autotune'``... Defaults to None.
        dynamic (bool, optional): Dynamic shapes (None: after the first
            recompilation). Defaults to None.
        fullgraph (bool): Fail on a graph break. Defaults to False.
        options (dict, optional): Backend options. Defaults to None.
    """

    priority = 'VERY_HIGH'

    def __init__(self, backend: str = 'inductor', mode: Optional[str] = None,
                 dynamic: Optional[bool] = None, fullgraph: bool = False,
                 options: Optional[dict] = None) -> None:
        if not isinstance(backend, str) or not backend:
            raise TypeError(f'backend must be a non-empty str, got '
                            f'{backend!r}')
        self.compile_kwargs = dict(backend=backend, mode=mode,
                                   dynamic=dynamic, fullgraph=fullgraph,
                                   options=options)
        self.compiled: List[str] = []

    def before_run(self, runner) -> None:
        """Compile the backbone and the neck of ``runner.model``.

        Args:
            runner (Runner): The runner.
        """
        if self.compiled:
            return
        self.compiled = compile_backbone_neck(runner.model,
                                              **self.compile_kwargs)
        print_log(f'torch.compile ({self.compile_kwargs["backend"]}) of '
                  f'{" and ".join(self.compiled)}; the first iterations '
                  'compile', 'current')
