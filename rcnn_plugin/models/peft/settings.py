"""Compare an adapter's recorded PEFT settings with a built model's.

An adapter file records the ``PEFTDetector`` settings it was trained with
(``meta['peft_cfg']``, see :func:`~rcnn_plugin.models.peft.save_adapter`).
Some of them change what the model computes without changing a tensor's
name or shape, so the architecture check cannot see them: LoRA's ``alpha``
(the scaling ``alpha / rank`` is an attribute, not a tensor), a conv
adapter's ``act`` and ``placement``, an input prompt's ``resize``, and the
``peft`` backend's ``lora_alpha`` / ``alpha`` / ``use_rslora``. Loading an
adapter under other values gives other outputs without a word, so these
are compared. Settings that only act in training (dropout, initialisation,
freezing) and the module regexes (the architecture check compares what
they matched) are not. A key absent on one side counts as its default.
"""
import dataclasses
import inspect
from typing import Any, Callable, Dict, Optional

from rcnn_plugin.utils.config_types import lists_for_tuples

from .conv_adapter import inject_conv_adapters
from .inject import inject_lora
from .prompts import FeaturePrompt, InputPrompt

#: Keys that do not change a trained model's outputs.
TRAINING_ONLY = frozenset({
    'target_modules', 'dropout', 'lora_dropout', 'rank_dropout',
    'module_dropout', 'init_weights', 'freeze', 'detector_type'})


def _signature_defaults(fn: Callable) -> Dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _peft_defaults(method: Optional[str]) -> Dict[str, Any]:
    from .hf_peft import PEFT_METHODS, import_peft
    if method not in PEFT_METHODS:
        return {}
    class_name, fixed = PEFT_METHODS[method]
    config_cls = getattr(import_peft(), class_name)
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(config_cls)
        if f.default is not dataclasses.MISSING
    }
    defaults.update(fixed)
    return defaults


def _compare(path: str, saved: Any, current: Any,
             defaults: Dict[str, Any]) -> Optional[str]:
    if not (isinstance(saved, dict) and isinstance(current, dict)):
        if lists_for_tuples(saved) != lists_for_tuples(current):
            return f'{path}: {saved!r} in the adapter, {current!r} here'
        return None
    for key in sorted(set(saved) | set(current), key=str):
        if key in TRAINING_ONLY:
            continue
        missing = object()
        default = defaults.get(key, missing)
        a, b = saved.get(key, default), current.get(key, default)
        if a is missing or b is missing:
            a, b = saved.get(key), current.get(key)
        if lists_for_tuples(a) != lists_for_tuples(b):
            return f'{path}.{key}: {a!r} in the adapter, {b!r} here'
    return None


def first_setting_difference(saved: Optional[dict],
                             current: Optional[dict]) -> Optional[str]:
    """The first PEFT setting that differs between an adapter and a model.

    Args:
        saved (dict, optional): The adapter's ``meta['peft_cfg']``.
        current (dict, optional): The model's ``peft_cfg`` attribute.

    Returns:
        str | None: ``'<key path>: <adapter value> in the adapter,
        <model value> here'``, or None when they agree or either side
        recorded nothing (a model built without ``PEFTDetector``).
    """
    if not saved or not current:
        return None
    sections = {
        'lora': _signature_defaults(inject_lora),
        'conv_adapter': _signature_defaults(inject_conv_adapters),
    }
    for section in sorted(set(saved) | set(current)):
        if section in TRAINING_ONLY:
            continue
        a, b = saved.get(section), current.get(section)
        if section == 'prompt' and isinstance(a, dict) and isinstance(b,
                                                                      dict):
            for part, cls in (('input', InputPrompt),
                              ('features', FeaturePrompt)):
                why = _compare(f'prompt.{part}', a.get(part), b.get(part),
                               _signature_defaults(cls.__init__))
                if why:
                    return why
            continue
        if section == 'peft_cfg' and isinstance(a, dict) and isinstance(
                b, dict) and a.get('type') == b.get('type'):
            defaults = _peft_defaults(a.get('type'))
        else:
            defaults = sections.get(section, {})
        why = _compare(section, a, b, defaults)
        if why:
            return why
    return None
