"""Render a dataset's ground truth after its pipeline to PNG files.

Usage::

    python tools/analysis/browse_dataset.py CONFIG OUT_DIR \
        [--split train] [--max-images 20] [--cfg-options k=v ...]

Each image is drawn as the model sees it (after resizing, flips and any
other transform of the split's pipeline), with boxes, masks and one colour
per class (mmdet's ``DetLocalVisualizer``).
"""
import argparse
import os
import os.path as osp
import sys

from mmdet.registry import DATASETS
from mmdet.structures.bbox import BaseBoxes
from mmdet.utils import register_all_modules
from mmdet.visualization import DetLocalVisualizer
from mmengine.config import Config, DictAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('out_dir')
    parser.add_argument('--split', default='train',
                        choices=['train', 'val', 'test'])
    parser.add_argument('--max-images', type=int, default=20)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    register_all_modules()
    import rcnn_plugin  # noqa: F401  (our datasets and transforms)
    cfg = Config.fromfile(args.config)
    from rcnn_plugin.utils import merge_cfg_options
    merge_cfg_options(cfg, args.cfg_options)
    dataset = DATASETS.build(cfg[f'{args.split}_dataloader']['dataset'])
    visualizer = DetLocalVisualizer()
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(args.out_dir, exist_ok=True)
    count = min(args.max_images, len(dataset))
    for idx in range(count):
        item = dataset[idx]
        sample = item['data_samples']
        gt = sample.gt_instances
        if isinstance(gt.get('bboxes'), BaseBoxes):  # the visualizer wants
            gt.bboxes = gt.bboxes.tensor  # a plain (N, 4) tensor
        img = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # to RGB
        name = osp.splitext(osp.basename(sample.img_path))[0]
        visualizer.add_datasample(
            name, img, sample, draw_pred=False, show=False,
            out_file=osp.join(args.out_dir, f'{idx:05d}_{name}.png'))
    print(f'wrote {count} image(s) to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
