"""Report the domain shift before adapting (issue 21, part 4).

The source model's AP50 per class on the target test images, and the
images of both domains side by side (size, file mode, grey intensity,
RGB means). Usage (the full command is in the project README)::

    python projects/DomainAdaptation/tools/shift_report.py CONFIG CKPT \
        [--out work_dirs/shift_report.md]

CONFIG is the source-only config of the project, CKPT its checkpoint.

Source images: the config's ``train_dataloader`` dataset; target images
and boxes: its ``test_dataloader`` dataset.
"""
import argparse
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
if ROOT not in sys.path:  # projects.<Name> imports from the repo root
    sys.path.insert(0, ROOT)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='source-model config (its test '
                        'dataloader is the target test part)')
    parser.add_argument('checkpoint', help='source-model checkpoint')
    parser.add_argument('--out', help='write the markdown report here '
                        '(and a .json beside it); default: print only')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--max-images', type=int, default=0,
                        help='statistics from at most N images per domain '
                        '(0: all)')
    args = parser.parse_args(argv)
    if args.max_images < 0:
        parser.error(f'--max-images must be >= 0, got {args.max_images}')
    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint file not found: {args.checkpoint}')
    return args


def _paths(dataset, limit: int) -> list:
    n = len(dataset) if not limit else min(limit, len(dataset))
    return [dataset.get_data_info(i)['img_path'] for i in range(n)]


def main(argv=None) -> str:
    """Build the datasets and model, print (and write) the report."""
    args = parse_args(argv)
    from mmdet.apis import init_detector
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from projects.DomainAdaptation.domain_adaptation import shift

    register_all_modules()
    cfg = Config.fromfile(args.config)
    init_default_scope('mmdet')
    if 'UnlabelledDataset' in str(cfg.train_dataloader.dataset):
        # an adaptation config: its training set holds the target too
        raise SystemExit(
            f'shift_report.py: error: {args.config} trains on unlabelled '
            'target images (UnlabelledDataset) beside the source; give '
            'the source-only config, whose training set is the source '
            'domain')
    source = DATASETS.build(cfg.train_dataloader.dataset)
    target = DATASETS.build(cfg.test_dataloader.dataset)
    model = init_detector(cfg, args.checkpoint, device=args.device)
    classes = list(target.metainfo['classes'])
    accuracy = shift.per_class_ap(model, target, classes)
    src_stats = shift.image_stats(_paths(source, args.max_images))
    tgt_stats = shift.image_stats(_paths(target, args.max_images))
    report = shift.format_shift_report(src_stats, tgt_stats, accuracy)
    print(report)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(report)
        with open(osp.splitext(args.out)[0] + '.json', 'w',
                  encoding='utf-8') as f:
            json.dump(dict(source=src_stats, target=tgt_stats,
                           accuracy=accuracy), f, indent=2)
    return report


if __name__ == '__main__':
    main()
