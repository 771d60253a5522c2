"""The corruption sweep behind ``tools/analysis/test_robustness.py``.

One Runner is built and the checkpoint loaded once (through mmengine's
``load_from``, hence rcnn_plugin's safe loader); then each condition
(clean, or one corruption at one severity) gets a dataloader whose
pipeline has :class:`SeededCorrupt` right after image loading, and
mmengine's ``TestLoop`` runs it with the config's evaluator (any metric,
any list of metrics). Each finished condition is saved as
``<out_dir>/conditions/<name>.json`` and reused by a later run with the
same config, checkpoint, seed and image count; another run's results are
refused (:class:`StaleResultsError`), never mixed in.
"""
import copy
import hashlib
import json
import os
import os.path as osp
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, TestLoop

from rcnn_plugin.config_doctor.context import iter_dataset_cfgs
from rcnn_plugin.datasets.transforms.corruptions import insert_after_loading
from rcnn_plugin.evaluation.robustness import (
    CLEAN,
    PerClassAP50,
    condition_name,
    condition_out_dirs,
    main_metric,
    numeric_metrics,
)
from rcnn_plugin.utils.checkpoint_io import check_checkpoint_fits
from rcnn_plugin.utils.fileio import atomic_open
from rcnn_plugin.utils.run_record import file_sha256

__all__ = [
    'StaleResultsError', 'ConditionStore', 'FirstImages', 'RobustnessSweep',
    'corrupted_dataset_cfg', 'prepare_config', 'run_fingerprint', 'run_sweep'
]


class StaleResultsError(ValueError):
    """The output folder holds results of another run."""


def corrupted_dataset_cfg(dataset_cfg: dict, corruption: Optional[str],
                          severity: int, seed: int,
                          where: str = 'test_dataloader.dataset') -> dict:
    """A copy of a dataset config with the corruption after image loading.

    Wrappers are walked (``dataset`` of ``ClassSubsetDataset``,
    ``ImageSubsetDataset``, ``RepeatDataset``...; each of ``datasets`` of
    ``ConcatDataset``) and every inner pipeline gets the step.

    Args:
        dataset_cfg (dict): The dataloader's dataset config.
        corruption (str, optional): None for the clean images (no step).
        severity (int): 0 to 5 (0 inserts a step that changes nothing).
        seed (int): Seed of :class:`SeededCorrupt`.
        where (str): The config key of ``dataset_cfg``, for errors.

    Returns:
        dict: The new config.

    Raises:
        ValueError: A dataset without a pipeline, or a pipeline without an
            image-loading step, naming it.
    """
    cfg = copy.deepcopy(dataset_cfg)
    if corruption is None:
        return cfg
    step = dict(type='SeededCorrupt', corruption=corruption,
                severity=severity, seed=seed)
    for leaf, key in iter_dataset_cfgs(cfg, where):
        if not leaf.get('pipeline'):
            raise ValueError(f'{key} has no pipeline, so there is no place '
                             'for the corruption')
        leaf['pipeline'] = insert_after_loading(
            leaf['pipeline'], step, where=f'{key}.pipeline')
    return cfg


def prepare_config(cfg: Config, checkpoint: str, split: str,
                   work_dir: str) -> Config:
    """A copy of ``cfg`` that tests ``split`` with ``checkpoint``.

    Args:
        cfg (Config): The merged config.
        checkpoint (str): The checkpoint to load (``load_from``).
        split (str): ``'test'`` (test_dataloader / test_evaluator) or
            ``'val'`` (val_dataloader / val_evaluator).
        work_dir (str): The Runner's work dir (logs).

    Returns:
        Config: The config for the Runner.
    """
    if split not in ('val', 'test'):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    cfg = copy.deepcopy(cfg)
    for key in ('dataloader', 'evaluator'):
        if cfg.get(f'{split}_{key}') is None:
            raise ValueError(f'the config has no {split}_{key}')
        cfg[f'test_{key}'] = cfg[f'{split}_{key}']
    cfg.test_cfg = cfg.get('test_cfg') or dict(type='TestLoop')
    cfg.load_from, cfg.resume, cfg.work_dir = checkpoint, False, work_dir
    cfg.launcher = cfg.get('launcher', 'none')
    return cfg


def run_fingerprint(cfg: Config, checkpoint: str, seed: int,
                    max_images: Optional[int], per_class: bool) -> dict:
    """What decides a condition's numbers, to tell runs apart.

    Args:
        cfg (Config): The prepared config (:func:`prepare_config`).
        checkpoint (str): The checkpoint file.
        seed (int): The corruption seed.
        max_images (int, optional): The image limit, None for all.
        per_class (bool): Whether :class:`PerClassAP50` is added.

    Returns:
        dict: Hashes of the model / data / evaluator config and of the
        checkpoint's bytes, the seed, the image limit, ``per_class`` and
        what keys each image's draws (``SeededCorrupt``: the folder and file
        name since 2026-12-07, the whole path before; a folder of the older
        draws is refused rather than mixed in).
    """
    parts = {k: cfg.get(k) for k in ('model', 'test_dataloader',
                                     'test_evaluator', 'test_cfg')}
    text = json.dumps(Config(dict(parts)).to_dict(), sort_keys=True,
                      default=str)
    if not osp.isfile(checkpoint):  # file_sha256 would say 'missing'
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    return dict(config_sha256=hashlib.sha256(text.encode()).hexdigest(),
                checkpoint_sha256=file_sha256(checkpoint), seed=seed,
                max_images=max_images, per_class=per_class,
                draws_keyed_by='folder and file name')


class ConditionStore:
    """One JSON per finished condition under ``<out_dir>/conditions``.

    Args:
        out_dir (str): The output folder.
        fingerprint (dict): :func:`run_fingerprint` of this run.
        info (dict): Facts written with it to ``run.json`` (config path...).
    """

    def __init__(self, out_dir: str, fingerprint: dict, info: dict) -> None:
        self.dir = osp.join(out_dir, 'conditions')
        self.fingerprint = fingerprint
        run_file = osp.join(out_dir, 'run.json')
        if osp.isfile(run_file):
            with open(run_file) as f:
                old = json.load(f).get('fingerprint', {})
            diff = [k for k in fingerprint if old.get(k) != fingerprint[k]]
            if diff:
                raise StaleResultsError(
                    f'{out_dir} holds results of another run (it differs '
                    f'in {", ".join(diff)}): use another --out-dir, or '
                    'delete that folder to start again')
        os.makedirs(self.dir, exist_ok=True)
        with open(run_file, 'w') as f:
            json.dump(dict(info, fingerprint=fingerprint), f, indent=1)

    def path(self, name: str) -> str:
        """The JSON file of condition ``name``.

        Args:
            name (str): Condition name (``'clean'``, ``'fog_s3'``).

        Returns:
            str: The path.
        """
        return osp.join(self.dir, f'{name}.json')

    def load(self, name: str) -> Optional[Dict[str, float]]:
        """The saved metrics of condition ``name``, or None.

        Args:
            name (str): Condition name.

        Returns:
            dict, optional: The metrics.
        """
        if not osp.isfile(self.path(name)):
            return None
        with open(self.path(name)) as f:
            saved = json.load(f)
        return saved['metrics'] if saved.get(
            'fingerprint') == self.fingerprint else None

    def save(self, name: str, metrics: Dict[str, float],
             seconds: float) -> None:
        """Save a finished condition (written whole, then renamed).

        Args:
            name (str): Condition name.
            metrics (dict): Its metrics.
            seconds (float): How long it took.
        """
        with atomic_open(self.path(name)) as f:
            json.dump(dict(condition=name, metrics=metrics, seconds=seconds,
                           fingerprint=self.fingerprint), f, indent=1)


class FirstImages:
    """The first ``num`` images of a dataset (``--max-images``).

    Args:
        dataset (object): A dataset with ``metainfo``.
        num (int): How many images to keep.
    """

    def __init__(self, dataset, num: int) -> None:
        if num < 1:
            raise ValueError(f'the image limit must be >= 1, got {num}')
        self.dataset = dataset
        self.num = min(num, len(dataset))

    @property
    def metainfo(self) -> dict:
        """Meta information of the wrapped dataset."""
        return self.dataset.metainfo

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, idx: int):
        if not 0 <= idx < self.num:
            raise IndexError(idx)
        return self.dataset[idx]


class RobustnessSweep:
    """Evaluate one checkpoint on clean and corrupted images.

    Args:
        cfg (Config): The prepared config (:func:`prepare_config`).
        seed (int): Seed of the corruptions. Defaults to 0.
        max_images (int, optional): Evaluate only the first images.
            Defaults to None (all).
        per_class (bool): Add :class:`PerClassAP50` to the evaluator.
            Defaults to True.
    """

    def __init__(self, cfg: Config, seed: int = 0,
                 max_images: Optional[int] = None,
                 per_class: bool = True) -> None:
        self.cfg, self.seed = cfg, seed
        self.max_images, self.per_class = max_images, per_class
        # Fail on a pipeline without image loading before building anything.
        corrupted_dataset_cfg(cfg.test_dataloader.dataset, 'fog', 1, seed)
        self.runner: Optional[Runner] = None
        self.evaluator, self._metric_dirs = None, {}

    def start(self) -> None:
        """Build the Runner and the evaluator, load the checkpoint."""
        if self.runner is not None:
            return
        cfg = self.cfg
        runner = (RUNNERS.build(cfg) if 'runner_type' in cfg else
                  Runner.from_cfg(cfg))
        load_from = cfg.get('load_from')
        if load_from and '://' not in load_from:
            # mmengine loads leniently: another class count would leave a
            # random classifier behind one warning, and every condition
            # would score near 0
            model = runner.model
            check_checkpoint_fits(getattr(model, 'module', model), load_from)
        runner.call_hook('before_run')
        runner.load_or_resume()
        self.evaluator = runner.build_evaluator(cfg.test_evaluator)
        if self.per_class:
            self.evaluator.metrics.append(PerClassAP50())
        self.runner = runner

    def dataloader(self, corruption: Optional[str], severity: int):
        """The test dataloader of one condition.

        Args:
            corruption (str, optional): None for clean.
            severity (int): 0 to 5.

        Returns:
            DataLoader: Built by ``Runner.build_dataloader``.
        """
        from mmdet.registry import DATASETS
        loader_cfg = copy.deepcopy(self.cfg.test_dataloader)
        dataset = DATASETS.build(corrupted_dataset_cfg(
            loader_cfg.dataset, corruption, severity, self.seed))
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        if self.max_images is not None:
            dataset = FirstImages(dataset, self.max_images)
            self._limit_coco_img_ids(dataset)
        loader_cfg.dataset = dataset
        loader_cfg.persistent_workers = False
        return Runner.build_dataloader(loader_cfg, seed=self.runner.seed)

    def _limit_coco_img_ids(self, dataset: FirstImages) -> None:
        """CocoMetric scores every image of its ann_file: limit it."""
        info = getattr(dataset.dataset, 'get_data_info', None)
        if info is None:
            return
        ids = [info(i).get('img_id') for i in range(len(dataset))]
        for metric in self.evaluator.metrics:
            if getattr(metric, '_coco_api', None) is not None and hasattr(
                    metric, 'img_ids'):
                metric.img_ids = ids

    def run(self, corruption: Optional[str],
            severity: int) -> Dict[str, float]:
        """Evaluate one condition with mmengine's ``TestLoop``.

        Args:
            corruption (str, optional): None for clean.
            severity (int): 0 to 5.

        Returns:
            dict: The numeric metrics.
        """
        self.start()
        runner = self.runner
        condition_out_dirs(self.evaluator.metrics, runner.log_dir,
                           condition_name(corruption, severity),
                           self._metric_dirs)
        fp16 = bool((self.cfg.get('test_cfg') or {}).get('fp16', False))
        loop = TestLoop(runner, self.dataloader(corruption, severity),
                        self.evaluator, fp16=fp16)
        runner._test_loop = loop  # hooks read runner.test_dataloader
        return numeric_metrics(loop.run())

    def classes(self) -> List[str]:
        """The class names of the test dataset.

        Returns:
            list[str]: From the dataset's metainfo.
        """
        if self.runner is not None:
            meta = self.runner.test_dataloader.dataset.metainfo
        else:  # every condition was done before: build the dataset only
            from mmdet.registry import DATASETS
            from mmengine.registry import init_default_scope
            init_default_scope(self.cfg.get('default_scope', 'mmdet'))
            meta = DATASETS.build(copy.deepcopy(
                self.cfg.test_dataloader.dataset)).metainfo
        return [str(c) for c in meta.get('classes', ())]

    def close(self) -> None:
        """Call the Runner's ``after_run`` hooks (once, at the end)."""
        if self.runner is not None:
            self.runner.call_hook('after_run')


def run_sweep(sweep: RobustnessSweep, store: ConditionStore,
              conditions: Sequence[Tuple[Optional[str], int]],
              log: Callable[[str], None] = print) -> Dict[str, dict]:
    """Run every condition not saved yet, one line each.

    Args:
        sweep (RobustnessSweep): The evaluator.
        store (ConditionStore): Where finished conditions live.
        conditions (Sequence[tuple]): ``(corruption, severity)`` pairs;
            ``(None, 0)`` is clean.
        log (Callable): Prints a line. Defaults to print.

    Returns:
        dict: Condition name -> metrics, ``'clean'`` included.
    """
    names: List[str] = list(dict.fromkeys(
        condition_name(c, s) for c, s in conditions))
    pairs = {condition_name(c, s): (c, s) for c, s in conditions}
    results: Dict[str, dict] = {}
    start = time.time()
    for i, name in enumerate(names, 1):
        saved = store.load(name)
        if saved is not None:
            results[name] = saved
            log(f'[robustness] {i}/{len(names)} {name}: done before, '
                'skipped')
            continue
        corruption, severity = pairs[name]
        tic = time.time()
        metrics = sweep.run(None if name == CLEAN else corruption, severity)
        seconds = time.time() - tic
        store.save(name, metrics, seconds)
        results[name] = metrics
        took = f'({seconds:.1f} s, {time.time() - start:.0f} s elapsed)'
        if not metrics:  # mmdet's CocoMetric when nothing was detected
            log(f'[robustness] {i}/{len(names)} {name}: no metric '
                f'(nothing detected?; scored 0.0 in the report) {took}')
            continue
        key = main_metric(list(metrics), sweep.classes())
        log(f'[robustness] {i}/{len(names)} {name}: {key} '
            f'{metrics[key]:.4f} {took}')
    return results
