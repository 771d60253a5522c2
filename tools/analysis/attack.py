"""Evaluate a detector on clean and on adversarial images (FGSM / PGD).

The attack maximises the detector's training loss against the ground truth
(Zhang and Wang, ICCV 2019): ``--target cls`` attacks the classification
terms (loss_rpn_cls + loss_cls, their A_cls), ``loc`` the localisation
terms (loss_rpn_bbox + loss_bbox, A_loc), ``sum`` every loss term;
``--loss-terms`` names the keys instead. The perturbation is bounded by
``--eps`` in 0-255 pixel units (L-inf), applied before the model's
normalisation. The model runs in eval mode (BN statistics untouched).

Example::

    python tools/analysis/attack.py \\
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \\
        work_dirs/bccd_fpn128_8e/epoch_8.pth --attack pgd --eps 4 \\
        --steps 10 --target cls --max-images 20

Writes OUT_DIR/attack.json (settings, clean and adversarial metrics) and
OUT_DIR/examples/*.png (clean | adversarial | perturbation x 127/eps,
detections with score >= 0.3 drawn). Bad flags: exit 2 with one sentence.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time
from typing import List, Optional

import cv2
import numpy as np
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint, set_random_seed
from torch.utils.data import Subset

import rcnn_plugin  # noqa: F401  (registers the plugin's modules)
from rcnn_plugin.apis import draw_detections
from rcnn_plugin.datasets import iter_dataset_cfgs
from rcnn_plugin.evaluation.robustness import CLEAN, fill_empty
from rcnn_plugin.models.adversarial import (
    LossTermError,
    gt_to_input_scale,
    pgd_attack,
    resolve_loss_terms,
)
from rcnn_plugin.utils import earlier_output, merge_cfg_options
from rcnn_plugin.utils.checkpoint_io import check_checkpoint_fits
from rcnn_plugin.utils.config_types import iter_pipeline_steps


class NoGroundTruthError(ValueError):
    """The images of the split come without ground truth."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--attack', choices=['fgsm', 'pgd'], default='pgd')
    p.add_argument('--eps', type=float, default=8.0,
                   help='L-inf radius in pixel units, 0-255 (default 8)')
    p.add_argument('--steps', type=int, default=10,
                   help='PGD steps (default 10; FGSM: 1)')
    p.add_argument('--step-size', type=float, default=None,
                   help='PGD step in pixel units (default 2.5 eps / steps; '
                   'FGSM: eps)')
    p.add_argument('--random-start', action='store_true',
                   help='start from uniform noise in the eps-ball')
    p.add_argument('--target', choices=['cls', 'loc', 'sum'], default='cls')
    p.add_argument('--loss-terms', nargs='+', default=None,
                   help='loss keys to maximise instead of --target')
    p.add_argument('--split', choices=['test', 'val'], default='test')
    p.add_argument('--max-images', type=int, default=None)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num-examples', type=int, default=4)
    p.add_argument('--out-dir', default=None,
                   help='default: work_dirs/attack/<config name>/'
                   '<checkpoint name>_<attack>-<target>-eps<eps>')
    p.add_argument('--overwrite', action='store_true',
                   help="replace the out dir's attack.json (without it an "
                   'existing one is an error, not lost)')
    p.add_argument('--device', default=None,
                   help='default: cuda when available, else cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> Optional[str]:
    """The sentence saying what is wrong with the flags, or None."""
    if not args.eps > 0:
        return f'--eps must be > 0 (pixel units, 0-255), got {args.eps}.'
    if args.steps <= 0:
        return f'--steps must be an integer >= 1, got {args.steps}.'
    if args.step_size is not None and not args.step_size > 0:
        return f'--step-size must be > 0, got {args.step_size}.'
    if args.max_images is not None and args.max_images <= 0:
        return f'--max-images must be >= 1, got {args.max_images}.'
    if args.num_examples < 0:
        return f'--num-examples must be >= 0, got {args.num_examples}.'
    return None


def attack_settings(args: argparse.Namespace) -> dict:
    fgsm = args.attack == 'fgsm'
    steps = 1 if fgsm else args.steps
    step = args.step_size or (args.eps if fgsm else 2.5 * args.eps / steps)
    target = args.loss_terms or args.target
    terms = resolve_loss_terms(target)
    return dict(attack=args.attack, eps=args.eps, steps=steps,
                step_size=step, random_start=args.random_start,
                target=target if isinstance(target, str) else list(target),
                loss_terms=list(terms) if terms else 'all loss terms')


def gt_after_resize(pipeline: list) -> bool:
    """Whether the pipeline loads annotations after resizing (mmdet's test
    pipelines do: the ground truth stays in original pixels), a Resize
    inside a wrapper step (Fast R-CNN's ProposalBroadcaster) included."""
    resized = False
    for _, step in iter_pipeline_steps(pipeline):
        name = str(step.get('type', ''))
        if 'LoadAnnotations' in name:
            return resized
        resized = resized or 'Resize' in name
    return False


def build(args: argparse.Namespace, cfg: Config):
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = MODELS.build(cfg.model)
    try:  # mmengine loads leniently: another class count, a random head
        check_checkpoint_fits(model, args.checkpoint)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f'attack.py: error: {err}') from None
    load_checkpoint(model, args.checkpoint, map_location='cpu',
                    logger='silent')
    model.to(device).eval()
    loader_cfg = cfg[f'{args.split}_dataloader'].to_dict()
    full = DATASETS.build(loader_cfg['dataset'])
    full.full_init()
    # The first images, through any wrapper (mmengine's wrappers have no
    # get_subset): the loader reads a Subset, the metrics the full metainfo.
    num = min(len(full), args.max_images or len(full))
    dataset = full if num == len(full) else Subset(full, range(num))
    loader = Runner.build_dataloader(
        dict(loader_cfg, dataset=dataset,
             sampler=dict(type='DefaultSampler', shuffle=False)),
        seed=args.seed)
    evaluators = [Evaluator(copy.deepcopy(cfg[f'{args.split}_evaluator']))
                  for _ in range(2)]
    img_ids = [full.get_data_info(i).get('img_id') for i in range(num)]
    for evaluator in evaluators:
        evaluator.dataset_meta = full.metainfo
        for metric in evaluator.metrics:
            if hasattr(metric, 'img_ids'):  # CocoMetric: only these images
                metric.img_ids = img_ids
    return model, full.metainfo, num, loader, evaluators


def example_panel(clean: torch.Tensor, adv: torch.Tensor, eps: float,
                  clean_out, adv_out, classes) -> np.ndarray:
    """clean | adversarial | amplified perturbation, side by side (BGR)."""
    def image(x):
        return x.detach().round().clamp(0, 255).byte().permute(
            1, 2, 0).cpu().numpy().copy()

    def dets(sample):
        pred = sample.pred_instances
        scale = np.tile(np.asarray(sample.scale_factor, np.float32), 2)
        return [dict(bbox_xyxy=box * scale, label=int(lab), score=float(s))
                for box, lab, s in zip(pred.bboxes.cpu().numpy(),
                                       pred.labels.cpu(), pred.scores.cpu())
                if s >= 0.3]

    delta = (adv - clean.float()) * (127.0 / eps) + 128.0
    tiles = [draw_detections(image(clean), dets(clean_out), classes),
             draw_detections(image(adv), dets(adv_out), classes),
             image(delta)]
    return np.concatenate(tiles, axis=1)


def attack_batch(model, data: dict, settings: dict, rescale: bool,
                 generator: torch.Generator) -> List[torch.Tensor]:
    """The adversarial images of one batch (ground truth at input scale)."""
    samples = data['data_samples']
    # mmdet's PackDetInputs packs an empty gt_instances without
    # LoadAnnotations; the loss then failed on its missing labels.
    if not all('gt_instances' in d and 'labels' in d.gt_instances
               for d in samples):
        raise NoGroundTruthError(
            'pipeline loads no ground truth, which the attack needs (add '
            'LoadAnnotations to it)')
    if rescale:
        samples = gt_to_input_scale(samples)
    return pgd_attack(model, dict(data, data_samples=samples),
                      settings['eps'], settings['step_size'],
                      settings['steps'], settings['target'],
                      random_start=settings['random_start'],
                      generator=generator)


def run(args: argparse.Namespace, cfg: Config, settings: dict) -> dict:
    model, metainfo, num, loader, (clean_eval, adv_eval) = build(args, cfg)
    # The pipeline of the dataset that reads the images (through wrappers).
    leaves = iter_dataset_cfgs(cfg[f'{args.split}_dataloader'].dataset, '')
    rescale = gt_after_resize(next(leaves)[0].get('pipeline', []))
    generator = torch.Generator().manual_seed(args.seed)
    os.makedirs(osp.join(args.out_dir, 'examples'), exist_ok=True)
    written, max_delta, start = 0, 0.0, time.time()
    classes = metainfo.get('classes', ())
    done = 0
    for data in loader:
        with torch.no_grad():
            clean_out = model.test_step(copy.deepcopy(data))
        clean_eval.process(data_samples=clean_out, data_batch=data)
        adv = attack_batch(model, data, settings, rescale, generator)
        with torch.no_grad():
            adv_out = model.test_step(dict(copy.deepcopy(data), inputs=adv))
        adv_eval.process(data_samples=adv_out, data_batch=data)
        for x, a, c, o in zip(data['inputs'], adv, clean_out, adv_out):
            x = x.to(a.device)
            max_delta = max(max_delta, float((a - x.float()).abs().max()))
            if written < args.num_examples:
                name = osp.splitext(osp.basename(c.img_path))[0]
                cv2.imwrite(osp.join(args.out_dir, 'examples',
                                     f'{written:03d}_{name}.png'),
                            example_panel(x, a, args.eps, c, o, classes))
                written += 1
        done += len(adv)
        print(f'[attack] {done}/{num} images, '
              f'{time.time() - start:.0f} s', flush=True)
    clean = clean_eval.evaluate(num)
    # mmdet's CocoMetric returns nothing when no box is left: 0.0, said
    attacked = fill_empty({CLEAN: clean, 'attacked': adv_eval.evaluate(
        num)})['attacked']
    return dict(settings, config=args.config, checkpoint=args.checkpoint,
                split=args.split, num_images=num, seed=args.seed,
                max_abs_perturbation=max_delta, gt_rescaled=rescale,
                wall_s=round(time.time() - start, 1),
                clean={k: float(v) for k, v in clean.items()},
                adversarial={k: float(v) for k, v in attacked.items()})


def default_out_dir(args: argparse.Namespace, settings: dict) -> str:
    """``work_dirs/attack/<config>/<checkpoint>_<attack>-<target>-eps<E>``:
    one folder per setting, so runs of other settings keep their results."""
    def stem(path):
        return osp.splitext(osp.basename(path))[0]

    target = settings['target']
    if not isinstance(target, str):
        target = '+'.join(target)
    return osp.join('work_dirs', 'attack', stem(args.config),
                    f"{stem(args.checkpoint)}_{settings['attack']}-{target}"
                    f"-eps{settings['eps']:g}")


def format_table(report: dict) -> str:
    lines = [f'{"metric":<28} {"clean":>8} {"attacked":>9} {"change":>8}']
    for key, value in report['clean'].items():
        adv = report['adversarial'].get(key, float('nan'))
        lines.append(f'{key:<28} {value:8.4f} {adv:9.4f} {adv - value:+8.4f}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    error = check_args(args)
    try:
        settings = None if error else attack_settings(args)
    except ValueError as exc:
        error = f'--loss-terms: {exc}.'
    if error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    args.out_dir = args.out_dir or default_out_dir(args, settings)
    error = None if args.overwrite else earlier_output(
        osp.join(args.out_dir, 'attack.json'))
    if error:
        print(f'error: {error}.', file=sys.stderr)
        return 2
    set_random_seed(args.seed)
    print(f'[attack] seed {args.seed} (another: --seed N); {settings}',
          flush=True)
    try:
        report = run(args, cfg, settings)
    except LossTermError as exc:
        print(f'error: {exc} (choose --target or --loss-terms from them).',
              file=sys.stderr)
        return 2
    except NoGroundTruthError as exc:
        print(f'error: the {args.split} {exc}.', file=sys.stderr)
        return 2
    with open(osp.join(args.out_dir, 'attack.json'), 'w') as f:
        json.dump(report, f, indent=2)
    print(format_table(report))
    print(f'max |perturbation| {report["max_abs_perturbation"]:.3f} '
          f'(eps {args.eps}); written to {args.out_dir}/attack.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
