"""tools/analysis/browse_dataset.py draws GT masks in class colours."""
import json
import os.path as osp
import runpy

import numpy as np
from PIL import Image

from conftest import REPO

TOOL = osp.join(REPO, 'tools', 'analysis', 'browse_dataset.py')
BASE = osp.join(REPO, 'configs', '_base_', 'datasets', 'via_instance.py')


def test_renders_masks_and_boxes(tmp_path):
    (tmp_path / 'train').mkdir()
    Image.new('RGB', (80, 60), (0, 0, 0)).save(tmp_path / 'train' / 'a.jpg')
    square = dict(name='polygon', all_points_x=[20, 60, 60, 20],
                  all_points_y=[10, 10, 50, 50])
    (tmp_path / 'train' / 'via_region_data.json').write_text(json.dumps({
        'a': dict(filename='a.jpg', regions=[dict(
            shape_attributes=square, region_attributes={})])}))
    out = tmp_path / 'out'
    main = runpy.run_path(TOOL)['main']
    assert main([BASE, str(out), '--max-images', '3', '--cfg-options',
                 f'train_dataloader.dataset.data_root={tmp_path}/',
                 'train_dataloader.dataset.pipeline.2.scale=(80,60)',
                 'train_dataloader.dataset.pipeline.3.prob=0.0']) == 0
    (png, ) = sorted(out.iterdir())
    img = np.asarray(Image.open(png).convert('RGB')).astype(int)
    assert img.shape[:2] == (60, 80)
    inside, outside = img[25:35, 35:45], img[0:5, 0:5]
    assert inside.sum() > 0  # the mask is filled with the class colour
    assert outside.sum() < inside.sum() / 4
