"""Input size, small-object warning and schedule chosen from the data."""
import pytest

from rcnn_plugin.apis.finetune.data_stats import (
    DataStats,
    collect_stats,
    default_epochs,
    pick_img_scale,
    scale_for_long,
    small_object_warning,
)


def _stats(img, boxes):
    return DataStats(img_sizes=list(img), box_sizes=list(boxes),
                     box_labels=[0] * len(boxes))


def test_collect_stats_skips_ignored_and_counts_empty_images():
    infos = [
        dict(width=640, height=480, instances=[
            dict(bbox=[0, 0, 10, 20], bbox_label=1, ignore_flag=0),
            dict(bbox=[0, 0, 50, 50], bbox_label=-1, ignore_flag=1)]),
        dict(width=320, height=240, instances=[]),  # no GT: a normal image
    ]
    stats = collect_stats(infos)
    assert stats.img_sizes == [(640, 480), (320, 240)]
    assert stats.box_sizes == [(10, 20)]
    assert stats.box_labels == [1]
    assert stats.num_images == 2


def test_native_size_kept_in_range():
    # BCCD: 640x480 with cells of ~40-150 px: kept at its size.
    stats = _stats([(640, 480)] * 5, [(40, 40), (100, 120), (150, 140)] * 4)
    scale, why = pick_img_scale(stats)
    assert scale == (640, 480)
    assert 'median image 640x480' in why


def test_small_images_scaled_up_to_min_long():
    stats = _stats([(256, 256)] * 3, [(20, 20)] * 10)
    assert pick_img_scale(stats)[0] == (512, 512)


def test_huge_images_capped():
    stats = _stats([(4000, 3000)] * 3, [(20, 20)] * 10)
    scale, _ = pick_img_scale(stats)
    assert scale[0] == 1333 and abs(scale[1] - 1000) <= 1


def test_large_objects_scale_down_but_not_below_min_long():
    # balloon-like: 1024 px images whose smallest objects are ~300 px.
    stats = _stats([(1024, 683)] * 5, [(300, 320), (500, 400)] * 5)
    scale, why = pick_img_scale(stats)
    assert scale == (512, 342)
    assert 'objects large' in why
    # Objects of 150 px: scaled to 96 px is 0.64, 1024 * 0.64 = 655.
    stats = _stats([(1024, 683)] * 5, [(150, 150)] * 10)
    assert pick_img_scale(stats)[0][0] == 655


def test_mixed_shapes_are_not_shrunk_by_the_median_short_side():
    # 3 wide 1242x375 and 2 square 1000x1000: the median scale
    # (1242, 375) resized the squares to 375x375 (x0.375)
    stats = _stats([(1242, 375)] * 3 + [(1000, 1000)] * 2, [(40, 40)] * 10)
    (long_side, short_side), _ = pick_img_scale(stats)
    assert long_side == 1242 and short_side == 1242
    factor = min(long_side / 1000, short_side / 1000)  # keep_ratio Resize
    assert factor >= 1


def test_no_images_is_an_error():
    with pytest.raises(ValueError, match='no images'):
        pick_img_scale(DataStats())


def test_small_object_warning_names_the_options():
    stats = _stats([(1242, 375)] * 3, [(10, 12)] * 8 + [(80, 80)] * 2)
    msg = small_object_warning(stats, (1242, 375))
    assert msg is not None
    assert '80%' in msg and '--img-size' in msg
    assert 'anchor_generator.scales' in msg
    # The suggested size brings the 10th percentile up to 16 px.
    size = int(msg.split('--img-size ')[1].split(')')[0])
    assert size * 10.95 / 1242 >= 16


def test_no_warning_for_large_objects_or_no_boxes():
    stats = _stats([(640, 480)] * 3, [(40, 40)] * 10)
    assert small_object_warning(stats, (640, 480)) is None
    assert small_object_warning(_stats([(640, 480)], []), (640, 480)) is None


@pytest.mark.parametrize('images,batch,epochs', [
    (205, 4, 8),    # BCCD: 52 steps an epoch
    (40, 4, 40),    # kitti_yolo: 10 steps an epoch
    (61, 2, 13),    # balloon at batch 2: 31 steps
    (5, 4, 60),     # capped
])
def test_default_epochs(images, batch, epochs):
    assert default_epochs(images, batch) == epochs


def test_default_epochs_rejects_empty():
    with pytest.raises(ValueError, match='positive'):
        default_epochs(0, 4)


@pytest.mark.parametrize('batch,lr', [(1, 0.01), (2, 0.01), (4, 0.01),
                                      (8, 0.01), (16, 0.02), (32, 0.04)])
def test_default_lr_is_linear_scaling_floored_at_0_01(batch, lr):
    from rcnn_plugin.apis.finetune.cli import default_lr
    assert default_lr(batch) == pytest.approx(lr)


def test_deep_images_are_found_from_the_headers(tmp_path):
    # 16-bit PNGs were read by mmdet's 8-bit loader: values 0..4095 became
    # an almost black image
    import numpy as np
    from PIL import Image

    from rcnn_plugin.apis.finetune.data_stats import deep_images
    deep = tmp_path / 'deep.png'
    Image.fromarray(np.full((8, 8), 4000, np.uint16)).save(deep)
    flat = tmp_path / 'flat.png'
    Image.new('L', (8, 8)).save(flat)
    (tmp_path / 'bad.png').write_bytes(b'no png')
    paths = [str(deep), str(flat), str(tmp_path / 'bad.png')]
    assert deep_images(paths) == (1, 2)  # the broken file is not counted
    assert deep_images(paths[1:]) == (0, 1)


def test_deep_images_are_read_by_the_domain_loader():
    from rcnn_plugin.apis.finetune import FinetuneOptions, build_overrides
    opts = FinetuneOptions(model='faster-rcnn', classes=('a', ),
                           img_scale=(128, 96), epochs=8, batch_size=4,
                           lr=0.01, deep_images=True)
    data = dict(type='CocoDataset', data_root='d', ann_file='a.json')
    out = build_overrides(dict(train=data, val=data, test=data), opts)
    for split in ('train', 'val'):
        first = out[f'{split}_dataloader']['dataset']['pipeline'][0]
        assert first == dict(type='LoadDomainImageFromFile',
                             percentiles=(1, 99))


def test_mixed_bit_depths_keep_the_8_bit_loader_with_a_warning(tmp_path):
    import numpy as np
    from PIL import Image

    from rcnn_plugin.apis.finetune.data_stats import deep_image_loader
    Image.fromarray(np.full((8, 8), 4000, np.uint16)).save(tmp_path / 'd.png')
    Image.new('RGB', (8, 8)).save(tmp_path / 'rgb.png')
    assert deep_image_loader([str(tmp_path / 'rgb.png')]) == (False, None)
    deep, note = deep_image_loader([str(tmp_path / 'd.png')])
    assert deep and 'LoadDomainImageFromFile' in note
    deep, note = deep_image_loader([str(tmp_path / 'd.png'),
                                    str(tmp_path / 'rgb.png')])
    assert not deep and 'WARNING: mixed bit depths' in note


def test_small_object_warning_scales_each_box_with_its_image():
    # Small 640x480 images in the majority, the boxes on large 4000x3000
    # ones: at (640, 480) the large images shrink 6.25x and their 40 px
    # boxes become 6 px. The median image's factor (1.0) hid them.
    infos = [dict(width=640, height=480, instances=[])] * 5 + [
        dict(width=4000, height=3000, instances=[
            dict(bbox=[0, 0, 40, 40], bbox_label=0)] * 4)] * 2
    stats = collect_stats(infos)
    assert stats.box_images == [5] * 4 + [6] * 4
    msg = small_object_warning(stats, (640, 480))
    assert msg is not None and '100%' in msg
    # Without the boxes' images (older callers): the median image's factor.
    stats.box_images = []
    assert small_object_warning(stats, (640, 480)) is None


def test_scale_for_long_lets_the_squarest_image_keep_its_long_side():
    stats = _stats([(1242, 375)] * 3 + [(1000, 1000)], [])
    assert scale_for_long(stats, 1242) == (1242, 1242)
    stats = _stats([(640, 480)] * 3, [])
    assert scale_for_long(stats, 1024) == (1024, 768)
