"""Fold LoRA updates into the base weights: a plain mmdet model and config.

Examples::

    # from a regular checkpoint of the PEFT training
    python tools/model_converters/merge_lora.py \
        configs/bccd_peft/faster-rcnn_mobilenetv2_fpn-128_lora-r8_8e_bccd.py \
        work_dirs/lora-r8/epoch_8.pth --out-dir work_dirs/lora-r8/merged
    # from the base weights plus an adapter-only checkpoint
    python tools/model_converters/merge_lora.py CONFIG \
        work_dirs/lora-r8/base_weights.pth \
        --adapter work_dirs/lora-r8/adapter_epoch_8.pth --out-dir OUT

It writes ``OUT/<config name>_merged.py`` (the config with the detector's
own type, no ``lora`` / ``freeze`` keys and no adapter hook) and
``OUT/<config name>_merged.pth`` (an mmengine checkpoint with the keys of
that plain model), then checks that the merged model's features and box
head outputs equal the unmerged model's on a random image. Conv adapters
and prompts fold where exact, and the adapters of the ``peft`` backend
(``backend='peft'``: LoRA, DoRA, LoHa, LoKr, IA3) fold through each
layer's own ``peft`` ``merge()`` (see ``docs/peft.md``).
"""
import argparse
import copy
import os
import os.path as osp

import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import save_checkpoint

from rcnn_plugin.models.peft.export import (
    load_peft_model,
    merge_to_plain,
    plain_config,
)
from rcnn_plugin.utils.checkpoint_io import read_checkpoint


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the PEFTDetector config')
    parser.add_argument(
        'checkpoint',
        help='a checkpoint of the PEFT model, or the base checkpoint when '
        '--adapter is given')
    parser.add_argument('--adapter', help='adapter-only checkpoint')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--check-size', type=int, nargs=2, default=[256, 256],
        metavar=('H', 'W'), help='image size of the equality check')
    return parser.parse_args(argv)


@torch.no_grad()
def _outputs(model, image):
    feats = model.extract_feat(image)
    h, w = image.shape[-2:]
    rois = torch.tensor([[0, 0, 0, w / 2, h / 2], [0, w / 4, h / 4, w, h]])
    out = model.roi_head._bbox_forward(feats, rois)
    rpn = []
    if getattr(model, 'with_rpn', False):  # LoRA may sit on rpn_conv
        rpn_cls, rpn_reg = model.rpn_head(feats)
        rpn = list(rpn_cls) + list(rpn_reg)
    return list(feats) + rpn + [out['cls_score'], out['bbox_pred']]


def check_equal(peft_model, plain_model, size) -> float:
    """Max abs difference of features, RPN and box-head outputs."""
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    a, b = _outputs(peft_model, image), _outputs(plain_model, image)
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def main(argv=None) -> None:
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    try:  # a config without PEFT, a missing file, an adapter of another
        # base or architecture, an unsafe checkpoint: a sentence each
        plain_cfg = plain_config(cfg)
        model = load_peft_model(cfg, args.checkpoint, args.adapter)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'merge_lora.py: error: {err}') from err
    reference = copy.deepcopy(model)
    try:  # conv adapters / prompts fold only where exact
        state = merge_to_plain(model)
    except ValueError as err:
        raise SystemExit(f'cannot merge {args.config}: {err}') from err

    plain_model_cfg = copy.deepcopy(plain_cfg.model)
    if plain_model_cfg.get('backbone', {}).get('init_cfg') is not None:
        plain_model_cfg.backbone.init_cfg = None
    plain_model = MODELS.build(plain_model_cfg)
    plain_model.load_state_dict(state, strict=True)
    plain_model.eval()
    diff = check_equal(reference, plain_model, args.check_size)

    if diff > 1e-3:  # before anything is written
        raise SystemExit(f'merged outputs differ from the unmerged model '
                         f'by {diff:.3g}; the merge is wrong (nothing '
                         'written)')
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(args.config))[0] + '_merged'
    cfg_out = osp.join(args.out_dir, stem + '.py')
    ckpt_out = osp.join(args.out_dir, stem + '.pth')
    plain_cfg.dump(cfg_out)
    meta = dict(merged_from=osp.abspath(args.checkpoint),
                adapter=args.adapter, max_abs_diff=diff)
    # the class names (mmdet's inferencer assumes COCO's 80 without them)
    for source in (args.adapter, args.checkpoint):  # the adapter's first
        dataset_meta = read_checkpoint(source)[1].get('dataset_meta') \
            if source else None
        if dataset_meta:
            meta['dataset_meta'] = dataset_meta
            break
    else:
        print(f'note: {args.checkpoint} records no class names '
              '(dataset_meta); the merged checkpoint has none either')
    save_checkpoint(dict(meta=meta, state_dict=state), ckpt_out)
    print(f'merged {sum(v.numel() for v in state.values()):,} values; '
          f'max |merged - unmerged| on a random image: {diff:.3g}')
    print(f'config: {cfg_out}\ncheckpoint: {ckpt_out}')


if __name__ == '__main__':
    main()
