"""Search spaces over config keys for ``tools/tune.py``.

A space file is a Python file with one dict, ``space``, from a parameter
name to its distribution::

    space = dict(
        lr=dict(type='float', low=0.005, high=0.04, log=True,
                keys=['optim_wrapper.optimizer.lr']),
        weight_decay=dict(type='float', low=1e-5, high=1e-3, log=True,
                          keys=['optim_wrapper.optimizer.weight_decay']),
        img_scale=dict(
            type='categorical', choices=[(640, 480), (800, 600)],
            keys=['train_dataloader.dataset.pipeline[type=Resize].scale',
                  'val_dataloader.dataset.pipeline[type=Resize].scale',
                  'test_dataloader.dataset.pipeline[type=Resize].scale']),
    )

``keys`` defaults to ``[name]``. A key is a dotted path into the merged
config; a segment is a dict key, a list index (``pipeline.2``) or
``[type=Name]``, the one list element whose ``type`` is ``Name``. Every key
must exist in the config (``new_key=True`` lets the last segment be new).
Distributions: ``float`` and ``int`` (``low``, ``high``, optional ``log``
and ``step``) and ``categorical`` (``choices``, any values: tuples and
lists are offered to Optuna by their ``repr``).
"""
import copy
import os.path as osp
import re
from typing import Any, Dict, List, Sequence, Tuple, Union

from mmengine.config import Config

__all__ = ['Param', 'SpaceError', 'load_space', 'resolve_key', 'set_key',
           'best_overrides']

Segment = Union[str, int]
_SELECTOR = re.compile(r'^(?P<key>[^\[\]]*)\[type=(?P<type>[^\]]+)\]$')


class SpaceError(ValueError):
    """A search space that does not fit the config, said in a sentence."""


def _check_distribution(where: str, kind: str, args: dict) -> None:
    """Optuna's own rules (a log range above 0 and without step, ...),
    checked when the space is read: at the first draw they were a
    traceback after the study and a trial were stored."""
    try:
        from optuna.distributions import FloatDistribution, IntDistribution
    except ImportError:  # the tool says which extra installs it
        return
    cls = FloatDistribution if kind == 'float' else IntDistribution
    try:
        cls(**args)
    except (ValueError, TypeError) as err:
        raise SpaceError(f'{where}: {err}') from err


class Param:
    """One searched parameter: a distribution and the keys it sets.

    Args:
        name (str): The parameter's name in the study.
        spec (dict): ``type`` ('float', 'int' or 'categorical'), its
            arguments, ``keys`` (list of config keys; defaults to
            ``[name]``) and ``new_key`` (bool).
        source (str): The space file, named in errors.
    """

    def __init__(self, name: str, spec: dict, source: str) -> None:
        where = f'{source}: space[{name!r}]'
        if not isinstance(spec, dict):
            raise SpaceError(f'{where} must be a dict with a type, got '
                             f'{spec!r}')
        spec = dict(spec)
        self.name = name
        self.kind = spec.pop('type', None)
        self.keys = list(spec.pop('keys', [name]))
        self.new_key = bool(spec.pop('new_key', False))
        if isinstance(self.keys, str) or not self.keys:
            raise SpaceError(f'{where}: keys must be a non-empty list')
        if self.kind in ('float', 'int'):
            allowed = {'low', 'high', 'log', 'step'}
            if 'low' not in spec or 'high' not in spec:
                raise SpaceError(f'{where}: a {self.kind} needs low and high')
            if spec['low'] > spec['high']:
                raise SpaceError(f'{where}: low {spec["low"]} is above high '
                                 f'{spec["high"]}')
        elif self.kind == 'categorical':
            allowed = {'choices'}
            if not spec.get('choices'):
                raise SpaceError(f'{where}: a categorical needs choices')
        else:
            raise SpaceError(f"{where}: type must be 'float', 'int' or "
                             f"'categorical', got {self.kind!r}")
        unknown = set(spec) - allowed
        if unknown:
            raise SpaceError(f'{where}: unknown argument(s) '
                             f'{sorted(unknown)} for a {self.kind}; '
                             f'allowed: {sorted(allowed)} and keys, new_key')
        self.args = spec
        if self.kind in ('float', 'int'):
            _check_distribution(where, self.kind, spec)
        choices = spec.get('choices', ())
        # Optuna stores None, bool, int, float and str choices; others are
        # offered by their repr and mapped back.
        self._by_label = None
        if any(not isinstance(c, (type(None), bool, int, float, str))
               for c in choices):
            labels = [repr(c) for c in choices]
            if len(set(labels)) != len(labels):
                raise SpaceError(f'{where}: choices repeat')
            self._by_label = dict(zip(labels, choices))

    def suggest(self, trial) -> Any:
        """Draw this parameter's value for an Optuna trial.

        Args:
            trial (optuna.Trial): The trial.

        Returns:
            The value to set at every key.
        """
        if self.kind == 'float':
            return trial.suggest_float(self.name, **self.args)
        if self.kind == 'int':
            return trial.suggest_int(self.name, **self.args)
        if self._by_label is None:
            return trial.suggest_categorical(self.name, self.args['choices'])
        label = trial.suggest_categorical(self.name, list(self._by_label))
        return self.value_of(label)

    def value_of(self, stored: Any) -> Any:
        """The config value of a value Optuna stored for this parameter."""
        if self._by_label is None:
            return stored
        return copy.deepcopy(self._by_label[stored])


def load_space(path: str) -> List[Param]:
    """Read a space file (see the module docstring).

    Args:
        path (str): A Python file defining ``space``.

    Returns:
        list[Param]: The parameters, in the file's order.

    Raises:
        SpaceError: No such file, no ``space`` dict, or a bad entry.
    """
    if not osp.isfile(path):
        raise SpaceError(f'no space file {path}')
    space = Config.fromfile(path).get('space')
    if not isinstance(space, dict) or not space:
        raise SpaceError(f'{path} must define space = dict(name=dict('
                         "type='float', low=..., high=..., keys=[...]), ...)")
    return [Param(name, spec, path) for name, spec in space.items()]


def _split(key: str) -> List[Tuple[str, Any]]:
    """Dotted key to ('key', str) / ('index', int) / ('type', str) steps."""
    steps: List[Tuple[str, Any]] = []
    for part in key.split('.'):
        match = _SELECTOR.match(part)
        if match:
            if match['key']:
                steps.append(('key', match['key']))
            steps.append(('type', match['type']))
        elif part.lstrip('-').isdigit():
            steps.append(('index', int(part)))
        elif part:
            steps.append(('key', part))
        else:
            raise SpaceError(f'config key {key!r} has an empty segment')
    return steps


def resolve_key(cfg: Any, key: str, new_key: bool = False
                ) -> List[Segment]:
    """Turn a space key into concrete segments, checking it exists.

    Args:
        cfg (Config | dict): The merged config.
        key (str): A dotted key (see the module docstring).
        new_key (bool): Allow the last segment to be missing.

    Returns:
        list[str | int]: Dict keys and list indices.

    Raises:
        SpaceError: A segment that is not in the config, naming the key
            and the part of it that exists.
    """
    node, path = cfg, []
    steps = _split(key)
    for i, (kind, arg) in enumerate(steps):
        last = i == len(steps) - 1
        here = '.'.join(str(p) for p in path) or '<config root>'
        if kind == 'key':
            if not isinstance(node, (dict, Config)):
                raise SpaceError(f'config key {key!r}: {here} is a '
                                 f'{type(node).__name__}, not a dict, so '
                                 f'it has no {arg!r}')
            if arg not in node:
                if last and new_key:
                    path.append(arg)
                    return path
                near = ', '.join(sorted(map(str, node))[:12])
                raise SpaceError(f'config key {key!r} does not exist: '
                                 f'{here} has no {arg!r} (it has: {near}); '
                                 'new_key=True allows a new last key')
            path.append(arg)
            node = node[arg]
            continue
        if not isinstance(node, (list, tuple)):
            raise SpaceError(f'config key {key!r}: {here} is not a list')
        if kind == 'index':
            if not -len(node) <= arg < len(node):
                raise SpaceError(f'config key {key!r}: {here} has '
                                 f'{len(node)} elements, no index {arg}')
            index = arg % len(node)
        else:
            hits = [j for j, item in enumerate(node)
                    if isinstance(item, dict) and item.get('type') == arg]
            if len(hits) != 1:
                types = [item.get('type') for item in node
                         if isinstance(item, dict)]
                raise SpaceError(
                    f'config key {key!r}: {here} has {len(hits)} elements '
                    f'of type {arg!r}, not one (types: {types}); use an '
                    'index instead')
            index = hits[0]
        path.append(index)
        node = node[index]
    return path


def set_key(cfg: Any, path: Sequence[Segment], value: Any) -> None:
    """Set ``value`` at resolved ``path`` in a config (in place)."""
    node = cfg
    for seg in path[:-1]:
        node = node[seg]
    if isinstance(node, tuple):
        raise SpaceError(f'cannot set {".".join(map(str, path))}: its parent '
                         'is a tuple')
    node[path[-1]] = copy.deepcopy(value)


def best_overrides(cfg: Any, paths: Sequence[Sequence[Segment]]) -> dict:
    """The nested dict a config inheriting the base needs to set ``paths``.

    mmengine merges dicts key by key but replaces lists whole, so a path
    through a list is written as the whole list (taken from ``cfg``, which
    already holds the new values).

    Args:
        cfg (Config | dict): The config with the values set.
        paths (list[list[str | int]]): Resolved paths.

    Returns:
        dict: Nested overrides, e.g. ``{'optim_wrapper': {'optimizer':
        {'lr': 0.01}}}``.
    """
    out: dict = {}
    for path in paths:
        cut = next((i for i, seg in enumerate(path) if isinstance(seg, int)),
                   len(path))
        keys = path[:cut]
        node = cfg
        for seg in keys:
            node = node[seg]
        value = _plain(node)
        target = out
        for seg in keys[:-1]:
            target = target.setdefault(seg, {})
        target[keys[-1]] = value
    return out


def _plain(value: Any) -> Any:
    """ConfigDicts to dicts, recursively (for writing a config file)."""
    if isinstance(value, (dict, Config)):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def flat_values(params: Sequence[Param], values: Dict[str, Any]
                ) -> Dict[str, Any]:
    """Parameter name to config value, from Optuna's stored params."""
    return {p.name: p.value_of(values[p.name]) for p in params
            if p.name in values}
