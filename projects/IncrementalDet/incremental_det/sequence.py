"""A sequence of incremental steps (1+1+1 and longer): spec and runs.

What ``tools/run_steps.py`` needs besides the Runner: the sequence spec,
read and checked before anything trains, and the runs with their folders
and teachers (the results and the table: :mod:`.sequence_results`).

A spec (YAML, JSON or Python; paths relative to the current directory)::

    work_dir: work_dirs/incremental/bccd-1-1-1   # optional
    steps:
      - name: step1                  # optional, default step<k>
        config: <base model config>  # trains the first classes
        classes: [RBC]               # optional, else its test split's
      - config: <incremental step config>   # model.teacher_ckpt etc.
        classes: [WBC]               # optional, checked
        lower: <plain fine-tuning config>   # optional (--bounds)
        upper: <joint-training config>      # optional (--bounds)

Runs: ``<step>`` (the method), ``<step>_lower`` and ``<step>_upper``, each
in ``<work_dir>/<run>/`` with ``final.pth`` and ``result.json``. The
method's teacher is the previous step's method checkpoint; the lower
bound chains its own checkpoints (the previous step's lower run, else its
method run); the upper bound has none.
"""
import copy
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

SPEC_KEYS = {'work_dir', 'steps'}
STEP_KEYS = {'name', 'config', 'classes', 'lower', 'upper'}


@dataclass
class Run:
    """One training run of a sequence.

    Args:
        step (str): The step's name.
        variant (str): 'method', 'lower' or 'upper'.
        config (str): Config file.
        old_classes (tuple): Classes known before the step.
        new_classes (tuple): Classes the step adds.
        run_dir (str): Its work dir.
        teacher_run (Run, optional): The run whose checkpoint is the
            teacher (and whose ``all_AP50`` the forgetting reference).
    """

    step: str
    variant: str
    config: str
    old_classes: tuple
    new_classes: tuple
    run_dir: str
    teacher_run: Optional['Run'] = None

    @property
    def name(self) -> str:
        """``<step>`` or ``<step>_lower`` / ``<step>_upper``."""
        return self.step if self.variant == 'method' else \
            f'{self.step}_{self.variant}'

    @property
    def checkpoint(self) -> str:
        """The final checkpoint (a link to the last one saved)."""
        return osp.join(self.run_dir, 'final.pth')

    @property
    def result_file(self) -> str:
        """Metrics, time and memory of the finished run."""
        return osp.join(self.run_dir, 'result.json')

    @property
    def teacher(self) -> Optional[str]:
        """The teacher checkpoint, None for a base model or upper bound."""
        return self.teacher_run.checkpoint if self.teacher_run else None


def load_spec(path: str) -> dict:
    """Read and check a sequence spec.

    Args:
        path (str): A .yml, .yaml, .json or .py file.

    Returns:
        dict: With ``steps`` (a list of dicts) and maybe ``work_dir``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For unknown keys, no steps, a step without ``config``
            or a repeated step name.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'sequence spec {path} does not exist')
    spec = Config.fromfile(path).to_dict()
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ValueError(f'{path}: unknown keys {unknown}; known: '
                         f'{sorted(SPEC_KEYS)}')
    steps = spec.get('steps')
    if not isinstance(steps, list) or not steps:
        raise ValueError(f'{path}: steps must be a non-empty list of '
                         'dict(config=...), one per step, in order')
    names = []
    for i, step in enumerate(steps):
        where = f'{path}: steps[{i}]'
        if not isinstance(step, dict) or 'config' not in step:
            raise ValueError(f'{where} has no config (the step\'s config '
                             'file)')
        unknown = sorted(set(step) - STEP_KEYS)
        if unknown:
            raise ValueError(f'{where}: unknown keys {unknown}; known: '
                             f'{sorted(STEP_KEYS)}')
        step.setdefault('name', f'step{i + 1}')
        if not str(step['name']).replace('-', '').replace('_', '').isalnum():
            raise ValueError(f'{where}.name {step["name"]!r}: use letters, '
                             'digits, - and _ (it names a folder)')
        names.append(step['name'])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f'{path}: step names repeat: {dup}')
    return spec


def _load(path: str, where: str) -> Config:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{where}: config {path} does not exist '
                                '(paths are relative to the current '
                                'directory, the repository root)')
    return Config.fromfile(path)


def evaluated_classes(cfg: Config) -> Tuple[str, ...]:
    """Classes of ``cfg.test_dataloader.dataset``, built without loading.

    Args:
        cfg (Config): A full config.

    Returns:
        tuple[str]: ``metainfo['classes']`` of the test dataset.
    """
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    ds_cfg = cfg.test_dataloader.dataset.to_dict()
    lazy = copy.deepcopy(ds_cfg)
    node = lazy
    while isinstance(node, dict):  # wrappers: defer every level's loading
        node['lazy_init'] = True
        node = node.get('dataset')
    try:
        dataset = DATASETS.build(lazy)
    except TypeError:  # a wrapper without lazy_init: load it
        dataset = DATASETS.build(ds_cfg)
    return tuple(dataset.metainfo['classes'])


def _num_classes(cfg: Config) -> Optional[int]:
    head = (cfg.model.get('roi_head') or {}).get('bbox_head') or {}
    return head.get('num_classes')


def _check_kind(model: dict, where: str, incremental: bool) -> None:
    if incremental and 'teacher_ckpt' not in model:
        raise ValueError(f'{where}: model {model.get("type")} has no '
                         'teacher_ckpt; a step after the first must be an '
                         'incremental step (e.g. IncrementalFasterRCNN)')
    if not incremental and 'teacher_ckpt' in model:
        raise ValueError(f'{where}: model {model.get("type")} is an '
                         'incremental step (model.teacher_ckpt); the first '
                         'step and the upper bound train a plain detector')


def check_config(cfg: Config, where: str, old: Sequence[str],
                 new: Sequence[str], incremental: bool) -> None:
    """Check a run's config against the classes of the sequence.

    Args:
        cfg (Config): The run's config.
        where (str): Its place in the spec, for the messages.
        old (Sequence[str]): Classes known before the step.
        new (Sequence[str]): Classes the step adds.
        incremental (bool): Whether it must be an incremental step
            (``model.teacher_ckpt``) or a model trained from scratch.

    Raises:
        ValueError: If it is not what ``incremental`` says, its
            ``model.old_classes`` / ``new_classes``, box head
            ``num_classes`` or test split's classes do not match.
    """
    model = cfg.model
    _check_kind(model, where, incremental)
    if incremental:
        for key, want in (('old_classes', old), ('new_classes', new)):
            got = tuple(model.get(key) or ())
            if got != tuple(want):
                raise ValueError(
                    f'{where}: model.{key} is {list(got)}, but the sequence '
                    f'needs {list(want)} (old: the classes of the steps '
                    'before, in order; new: this step\'s)')
    num = _num_classes(cfg)
    if num is not None and num != len(old) + len(new):
        raise ValueError(f'{where}: model.roi_head.bbox_head.num_classes is '
                         f'{num}, but after the step the model knows '
                         f'{len(old) + len(new)} classes '
                         f'{list(old) + list(new)}')
    got = evaluated_classes(cfg)
    if got != tuple(old) + tuple(new):
        raise ValueError(
            f'{where}: test_dataloader.dataset evaluates the classes '
            f'{list(got)}, but after the step the model knows '
            f'{list(old) + list(new)}: restrict the test split, e.g. '
            'ClassSubsetDataset(classes=...), in the model\'s order')


def _new_classes(cfg: Config, step: dict, where: str, seen: list,
                 first: bool) -> tuple:
    """The classes the step adds: its config's, or the spec's."""
    if first:
        new = tuple(step.get('classes') or evaluated_classes(cfg))
    else:
        new = tuple(cfg.model.get('new_classes') or ())
    given = step.get('classes')
    if given is not None and tuple(given) != new:
        raise ValueError(f'{where}.classes is {list(given)}, but its config '
                         f'adds {list(new)} (model.new_classes)')
    overlap = [c for c in new if c in seen]
    if overlap:
        raise ValueError(f'{where}: the step adds {list(new)}, but '
                         f'{overlap} were added by an earlier step; each '
                         'step adds classes no step before had')
    if not new or len(set(new)) != len(new):
        raise ValueError(f'{where}: the step must add distinct classes, '
                         f'got {list(new)}')
    return new


def plan_runs(spec: dict, spec_path: str, work_dir: str,
              bounds: bool = False) -> List[Run]:
    """Check the whole sequence and list its runs in training order.

    Args:
        spec (dict): From :func:`load_spec`.
        spec_path (str): The spec file, for the messages.
        work_dir (str): Folder of the runs' folders.
        bounds (bool): Also the ``lower`` / ``upper`` runs given.
            Defaults to False.

    Returns:
        list[Run]: Per step: the method, then its lower and upper runs.

    Raises:
        FileNotFoundError: If a config does not exist.
        ValueError: If a config does not fit the sequence (see
            :func:`check_config`), or the first step has bounds.
    """
    runs: List[Run] = []
    seen: list = []
    prev: Dict[str, Run] = {}
    for i, step in enumerate(spec['steps']):
        where = f'{spec_path}: steps[{i}]'
        cfg = _load(step['config'], f'{where}.config')
        at = f'{where}.config ({step["config"]})'
        _check_kind(cfg.model, at, incremental=bool(i))
        new = _new_classes(cfg, step, where, seen, first=not i)
        old = tuple(seen)
        check_config(cfg, at, old, new, incremental=bool(i))
        method = Run(step['name'], 'method', step['config'], old, new,
                     osp.join(work_dir, step['name']), prev.get('method'))
        current = dict(method=method)
        for variant in ('lower', 'upper'):
            if not bounds or not step.get(variant):
                continue
            if not i:
                raise ValueError(f'{where}.{variant}: the first step has no '
                                 'bounds (it trains the base model)')
            path = step[variant]
            check_config(_load(path, f'{where}.{variant}'),
                         f'{where}.{variant} ({path})', old, new,
                         incremental=variant == 'lower')
            teacher = prev.get('lower', prev['method']) \
                if variant == 'lower' else None
            current[variant] = Run(
                step['name'], variant, path, old, new,
                osp.join(work_dir, f'{step["name"]}_{variant}'), teacher)
        runs += current.values()
        prev = current
        seen += new
    return runs
