"""Write RPN proposals for a dataset's splits, for Fast R-CNN training.

Runs the RPN of a trained model (an RPN-only detector, or the RPN inside a
Faster / Mask R-CNN: backbone, neck and RPN head only, no RoI head) over
each split's dataset with the test-time pipeline (no flip) and writes one
pickle per split with mmdet's ``DumpProposals``: ``{<parent folder>/<file
name>: InstanceData(bboxes, scores)}``, boxes ``x1, y1, x2, y2`` in original
image pixels, best first. Datasets read it through ``proposal_file`` and the
``LoadProposals`` transform.

Example::

    python tools/generate_proposals.py \
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \
        work_dirs/bccd_fpn128_8e/epoch_8.pth --out-dir work_dirs/bccd_proposals
"""
import argparse
import copy
import os.path as osp
import time

import torch
from mmdet.evaluation import DumpProposals
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import MMLogger
from mmengine.runner import Runner, load_checkpoint

from rcnn_plugin.config_doctor.context import iter_dataset_cfgs
from rcnn_plugin.utils import merge_cfg_options
from rcnn_plugin.utils.config_types import cfg_type_name

SPLITS = ('train', 'val', 'test')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write RPN proposals for Fast R-CNN')
    parser.add_argument('config', help='config of the RPN / Faster R-CNN')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--out-dir', required=True,
                        help='folder for <split>.pkl')
    parser.add_argument('--splits', nargs='+', default=list(SPLITS),
                        choices=SPLITS, help='dataloaders to run')
    parser.add_argument('--num-proposals', type=int, default=1000,
                        help='proposals kept per image (after NMS)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value')
    args = parser.parse_args()
    if args.num_proposals < 1:
        parser.error(f'--num-proposals must be >= 1, got {args.num_proposals}')
    return args


def rpn_test_cfg(model_cfg: ConfigDict) -> ConfigDict:
    """The RPN's test config inside ``model_cfg`` (Faster R-CNN or RPN).

    Args:
        model_cfg (ConfigDict): A detector config with an ``rpn_head``: a
            two-stage detector, or mmdet's ``RPN`` (both keep the RPN's test
            settings in ``test_cfg.rpn``).

    Returns:
        ConfigDict: The config the RPN head predicts with (mutable).

    Raises:
        ValueError: If the model has no RPN.
    """
    if model_cfg.get('rpn_head') is None or \
            model_cfg.get('test_cfg', {}).get('rpn') is None:
        raise ValueError(
            f'model type {model_cfg.get("type")!r} has no RPN ("rpn_head" '
            'and "test_cfg.rpn"): cannot generate proposals')
    return model_cfg.test_cfg.rpn


def source_dataset_cfg(dataset: dict, key: str) -> dict:
    """The one dataset config under wrappers (the config doctor's walk)."""
    leaves = [cfg for cfg, _ in iter_dataset_cfgs(dataset, key)]
    if len(leaves) != 1:
        raise ValueError(f'{key} holds {len(leaves)} datasets; write the '
                         'proposals of each with its own config')
    return leaves[0]


def split_dataloader_cfg(cfg: Config, split: str) -> dict:
    """The ``<split>_dataloader`` config, set up to cover every image.

    The dataset runs in test mode (no filtering of images without boxes),
    without proposals, with the test dataloader's pipeline (no flip).
    Dataset wrappers (``ClassSubsetDataset``, ``KShotDataset``, ...) are
    unwrapped: the proposals cover every image of the source dataset.

    Args:
        cfg (Config): The full config.
        split (str): ``'train'``, ``'val'`` or ``'test'``.

    Returns:
        dict: A dataloader config for ``Runner.build_dataloader``.
    """
    loader = copy.deepcopy(cfg.get(f'{split}_dataloader'))
    if loader is None:
        raise ValueError(f'{cfg.filename} has no {split}_dataloader')
    loader.dataset = dataset = source_dataset_cfg(
        loader.dataset, f'{split}_dataloader.dataset')
    dataset.update(
        test_mode=True, filter_cfg=None, proposal_file=None,
        pipeline=copy.deepcopy(
            source_dataset_cfg(cfg.test_dataloader.dataset,
                               'test_dataloader.dataset').pipeline))
    # LoadProposals would need the proposals that are being generated.
    dataset.pipeline = [
        t for t in dataset.pipeline if cfg_type_name(t) != 'LoadProposals']
    loader.update(
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_sampler=None, persistent_workers=False)
    return loader


@torch.no_grad()
def dump_split(model: torch.nn.Module, loader_cfg: dict, out_file: str,
               num_proposals: int) -> int:
    """Run the RPN over one dataloader and dump its proposals.

    Args:
        model (torch.nn.Module): The detector, in eval mode.
        loader_cfg (dict): Dataloader config from :func:`split_dataloader_cfg`.
        out_file (str): Path of the ``.pkl`` to write.
        num_proposals (int): Proposals kept per image.

    Returns:
        int: Number of images written.
    """
    loader = Runner.build_dataloader(loader_cfg)
    # Two-stage detectors call it rpn_head; mmdet's RPN detector bbox_head.
    head = model.rpn_head if hasattr(model, 'rpn_head') else model.bbox_head
    dumper = DumpProposals(
        output_dir=osp.dirname(out_file) or '.',
        proposals_file=osp.basename(out_file),
        num_max_proposals=num_proposals)
    logger = MMLogger.get_instance('generate_proposals')
    for step, data in enumerate(loader, 1):
        if step % 20 == 0:
            logger.info(f'{out_file}: batch {step}/{len(loader)}')
        data = model.data_preprocessor(data, False)
        feats = model.extract_feat(data['inputs'])
        samples = data['data_samples']
        # rescale=True: boxes in the original image's pixels.
        results = head.predict(feats, samples, rescale=True)
        for sample, result in zip(samples, results):
            sample.pred_instances = result
        dumper.process(data, [s.to_dict() for s in samples])
    dumper.evaluate(len(loader.dataset))
    return len(loader.dataset)


def main() -> None:
    try:
        run(parse_args())
    except (ValueError, FileNotFoundError) as err:  # a sentence, not a trace
        raise SystemExit(f'generate_proposals.py: error: {err}') from None


def run(args: argparse.Namespace) -> None:
    register_all_modules()
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    model_cfg = copy.deepcopy(cfg.model)
    test_cfg = rpn_test_cfg(model_cfg)
    test_cfg.max_per_img = args.num_proposals
    test_cfg.nms_pre = max(test_cfg.get('nms_pre', 0), args.num_proposals)
    model_cfg.pop('init_cfg', None)
    model_cfg.backbone.pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} not found')
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(args.device).eval()
    logger = MMLogger.get_instance('generate_proposals', log_level='INFO')
    for split in args.splits:
        start = time.time()
        out_file = osp.join(args.out_dir, f'{split}.pkl')
        count = dump_split(model, split_dataloader_cfg(cfg, split), out_file,
                           args.num_proposals)
        logger.info(f'{split}: {count} images -> {out_file} '
                    f'({time.time() - start:.0f} s)')


if __name__ == '__main__':
    main()
