"""rcnn_plugin.apis: inputs, result conversion and drawing (no model)."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from pycocotools import mask as mask_util

from rcnn_plugin.apis import (
    VideoReader,
    collect_images,
    draw_detections,
    encode_mask,
    instances_to_dicts,
    is_video,
    read_image,
    to_coco_results,
)


def _instances(with_masks=False):
    inst = InstanceData()
    inst.bboxes = torch.tensor([[0., 0., 4., 4.], [2., 2., 8., 6.],
                                [1., 1., 3., 3.]])
    inst.scores = torch.tensor([0.2, 0.9, 0.5])
    inst.labels = torch.tensor([0, 1, 2])
    if with_masks:
        masks = torch.zeros(3, 10, 12, dtype=torch.bool)
        masks[1, 2:6, 2:8] = True
        inst.masks = masks
    return inst


def test_filter_order_and_coco_format():
    dets = instances_to_dicts(_instances(), score_thr=0.3)
    assert [d['label'] for d in dets] == [1, 2]  # by score, 0.2 dropped
    assert instances_to_dicts(_instances(), 0.0, keep_labels=[0, 2]) == [
        dict(bbox_xyxy=[1.0, 1.0, 3.0, 3.0], score=0.5, label=2),
        dict(bbox_xyxy=[0.0, 0.0, 4.0, 4.0], score=0.2, label=0)]
    coco = to_coco_results(dets, image_id=7)
    assert coco[0] == dict(image_id=7, category_id=2, bbox=[2.0, 2.0, 6.0,
                                                            4.0], score=0.9)
    empty = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                         labels=torch.zeros(0, dtype=torch.long))
    assert instances_to_dicts(empty) == []


def test_rle_masks_round_trip_and_drawing():
    dets = instances_to_dicts(_instances(with_masks=True), score_thr=0.8)
    rle = dets[0]['segmentation']
    assert isinstance(rle['counts'], str) and rle['size'] == [10, 12]
    decoded = mask_util.decode(dict(rle, counts=rle['counts'].encode()))
    assert decoded.sum() == 24 and decoded[2:6, 2:8].all()
    assert to_coco_results(dets, 0)[0]['segmentation'] == rle
    mask = np.zeros((5, 5), bool)
    assert mask_util.area(encode_mask(mask)) == 0
    image = np.zeros((10, 12, 3), np.uint8)
    drawn = draw_detections(image, dets, ['a', 'b', 'c'])
    assert drawn.shape == image.shape and drawn.any() and not image.any()


def test_inputs(tmp_path):
    import cv2
    assert is_video('x.MP4') and is_video('a/b.avi') and not is_video('x.jpg')
    cv2.imwrite(str(tmp_path / 'b.png'), np.zeros((4, 5, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'a.jpg'), np.zeros((4, 5, 3), np.uint8))
    (tmp_path / 'notes.txt').write_text('not an image')
    (tmp_path / 'bad.jpg').write_bytes(b'\xff\xd8 truncated')
    paths = collect_images(str(tmp_path))
    assert [p.split('/')[-1] for p in paths] == ['a.jpg', 'b.png', 'bad.jpg']
    assert collect_images(str(tmp_path / '*.png'))[0].endswith('b.png')
    assert read_image(paths[1]).shape == (4, 5, 3)
    assert read_image(paths[2]) is None
    with pytest.raises(FileNotFoundError, match='no images found'):
        collect_images(str(tmp_path / 'missing'))
    with pytest.raises(FileNotFoundError, match='video not found'):
        VideoReader(str(tmp_path / 'missing.mp4'))


def test_unreadable_entries_are_skipped_and_other_files_counted(
        tmp_path, monkeypatch):
    import cv2

    from rcnn_plugin.apis import inputs
    logged = []
    monkeypatch.setattr(inputs, 'print_log',
                        lambda msg, *a, **k: logged.append(msg))
    cv2.imwrite(str(tmp_path / 'a.jpg'), np.zeros((4, 5, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'c.ppm'), np.zeros((4, 5, 3), np.uint8))
    (tmp_path / 'dangling.jpg').symlink_to(tmp_path / 'gone.jpg')
    (tmp_path / 'folder.jpg').mkdir()
    (tmp_path / 'a.xml').write_text('<annotation/>')
    paths = collect_images(str(tmp_path))
    # .ppm decodes with OpenCV (it was left out uncounted); the folder is
    # no file; the annotation file is left out and said.
    assert [p.split('/')[-1] for p in paths] == [
        'a.jpg', 'c.ppm', 'dangling.jpg']
    assert 'left out 1 file(s)' in logged[-1] and 'a.xml' in logged[-1]
    assert read_image(paths[1]).shape == (4, 5, 3)
    # A dangling link stopped a folder run (FileNotFoundError).
    assert read_image(paths[2]) is None
    assert 'skipping' in logged[-1] and 'dangling.jpg' in logged[-1]
    # A file named on its own is read whatever its extension.
    assert collect_images(str(tmp_path / 'a.xml')) == [
        str(tmp_path / 'a.xml')]


class _FakeCapture:
    """Scripted cv2.VideoCapture: True = a frame, False = a failed read."""

    def __init__(self, script):
        self.script = list(script)

    def read(self):
        if not self.script:
            return False, None
        ok = self.script.pop(0)
        return ok, (np.zeros((2, 2, 3), np.uint8) if ok else None)

    def release(self):
        pass


def _reader(tmp_path, script, num_frames, max_failures=10):
    import cv2
    path = str(tmp_path / 'v.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 5,
                             (8, 8))
    writer.write(np.zeros((8, 8, 3), np.uint8))
    writer.release()
    reader = VideoReader(path, max_failures=max_failures)
    reader.cap, reader.num_frames = _FakeCapture(script), num_frames
    frames = [(i, f is not None) for i, f in reader.frames()]
    return frames, reader.unread_at_end


def test_video_corrupt_frames_are_reported_not_dropped(tmp_path):
    # Frame 1 fails inside the frame count: reported as None; reading goes
    # on. The failure after the last frame is the end of the video.
    assert _reader(tmp_path, [True, False, True, True], 3) == ([
        (0, True), (1, False), (2, True), (3, True)], 0)
    assert _reader(tmp_path, [True, True, False], 2) == ([
        (0, True), (1, True)], 0)


def test_video_end_before_the_estimated_count_is_not_corrupt(tmp_path):
    from conftest import logged_messages
    # The container's frame count is an estimate: reads failing after the
    # last real frame are the end, counted once, not corrupt frames.
    with logged_messages(30) as messages:
        assert _reader(tmp_path, [True] * 3, 5) == ([
            (0, True), (1, True), (2, True)], 2)
    assert len(messages) == 1 and 'reports 5 frames' in messages[0]
    assert 'frames 3 to 4' in messages[0]
    # Too many failures in a row: the video is taken to end there.
    assert _reader(tmp_path, [True] + [False] * 5 + [True], 9,
                   max_failures=2) == ([(0, True)], 2)
    # Failures followed by a frame are corrupt frames inside the video.
    assert _reader(tmp_path, [True, False, False, True], 4,
                   max_failures=2) == ([(0, True), (1, False), (2, False),
                                        (3, True)], 0)


def _pipeline(steps):
    from mmdet.registry import TRANSFORMS
    from mmengine.dataset import Compose
    return Compose([TRANSFORMS.build(step) for step in steps])


def test_inference_pipeline_loads_arrays_and_drops_annotations():
    from rcnn_plugin.apis.inputs import inference_pipeline
    pipeline = inference_pipeline(_pipeline([
        dict(type='LoadImageFromFile', to_float32=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(20, 10), keep_ratio=False),
        dict(type='PackDetInputs')]))
    names = [type(step).__name__ for step in pipeline.transforms]
    assert names == ['LoadImageFromNDArray', 'Resize', 'PackDetInputs']
    assert pipeline.transforms[0].to_float32  # the loader's options kept
    image = np.full((6, 8, 3), 7, np.uint8)
    packed = pipeline(dict(img=image))
    assert tuple(packed['inputs'].shape) == (3, 10, 20)
    assert packed['data_samples'].ori_shape == (6, 8)


def test_inference_pipeline_takes_the_inferencers_loader():
    """mmdet's DetInferencer writes InferencerLoader into the config that
    the explain tools pass on; its array branch is kept."""
    from rcnn_plugin.apis.inputs import inference_pipeline
    pipeline = inference_pipeline(_pipeline([
        dict(type='mmdet.InferencerLoader', to_float32=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs')]))
    names = [type(step).__name__ for step in pipeline.transforms]
    assert names == ['LoadImageFromNDArray', 'PackDetInputs']
    assert pipeline.transforms[0].to_float32
    packed = pipeline(dict(img=np.zeros((6, 8, 3), np.uint8)))
    assert tuple(packed['inputs'].shape) == (3, 6, 8)


def test_inference_pipeline_without_an_image_loader_is_an_error():
    from rcnn_plugin.apis.inputs import inference_pipeline
    with pytest.raises(ValueError, match="loading the image .*'Resize'"):
        inference_pipeline(_pipeline([
            dict(type='Resize', scale=(20, 10)),
            dict(type='PackDetInputs')]))


def test_explain_pipeline_is_the_inference_pipeline():
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from rcnn_plugin.apis.explain.adapter import _test_pipeline
    register_all_modules()  # as the explainer's model building does
    cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[
        dict(type='LoadImageFromFile', to_float32=True),
        dict(type='Resize', scale=(20, 10), keep_ratio=False),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs')]))))
    steps = _test_pipeline(cfg).transforms
    names = [type(step).__name__ for step in steps]
    assert names == ['LoadImageFromNDArray', 'Resize', 'PackDetInputs']
    assert steps[0].to_float32  # the loader's options kept


def _write_12bit(path):
    """A 16-bit PNG holding 12-bit values (0..4080) and its 8-bit view."""
    import cv2
    image8 = np.zeros((6, 8, 3), np.uint8)
    image8[:, :, 0] = np.arange(8, dtype=np.uint8) * 30
    image8[2:4, 2:6] = (200, 100, 50)
    cv2.imwrite(str(path), image8.astype(np.uint16) * 16)
    return image8


def test_image_reader_uses_the_domain_loader_of_the_pipeline(tmp_path):
    from rcnn_plugin.apis.inputs import image_reader
    from rcnn_plugin.datasets.transforms import LoadDomainImageFromFile
    image8 = _write_12bit(tmp_path / 'a.png')
    step = dict(type='LoadDomainImageFromFile', value_range=(0, 4080))
    for loader in (step, LoadDomainImageFromFile(value_range=(0, 4080))):
        got = image_reader(loader)(str(tmp_path / 'a.png'))
        assert got.dtype == np.uint8
        assert np.abs(got.astype(int) - image8).max() <= 1
    # mmdet's loader (and read_image) see 8 bits of the 16: a dark image.
    assert image_reader(dict(type='LoadImageFromFile')) is read_image
    assert image_reader(None) is read_image
    assert read_image(str(tmp_path / 'a.png')).max() <= 200 // 16 + 1
    (tmp_path / 'bad.png').write_bytes(b'not a png')
    assert image_reader(step)(str(tmp_path / 'bad.png')) is None
    # ignore_empty: the loader returns None (a TypeError before).
    assert image_reader(dict(step, ignore_empty=True))(
        str(tmp_path / 'bad.png')) is None


def test_image_reader_decodes_as_the_configs_loader(tmp_path):
    from mmcv.transforms import LoadImageFromFile
    from PIL import Image

    from rcnn_plugin.apis.inputs import image_reader
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees to display
    path = str(tmp_path / 'camera.jpg')
    Image.new('RGB', (40, 20), (200, 100, 50)).save(path, exif=exif)
    assert read_image(path).shape == (40, 20, 3)  # rotated, as mmdet's
    assert image_reader(dict(type='LoadImageFromFile'))(path).shape == (
        40, 20, 3)
    raw = dict(type='LoadImageFromFile', color_type='color_ignore_orientation')
    for loader in (raw, LoadImageFromFile(
            color_type='color_ignore_orientation')):
        assert image_reader(loader)(path).shape == (20, 40, 3)  # as trained
    (tmp_path / 'bad.jpg').write_bytes(b'not a jpeg')
    assert image_reader(raw)(str(tmp_path / 'bad.jpg')) is None


def test_inference_pipeline_takes_the_domain_loader():
    from rcnn_plugin.apis.inputs import inference_pipeline
    pipeline = inference_pipeline(_pipeline([
        dict(type='LoadDomainImageFromFile', to_float32=True),
        dict(type='PackDetInputs')]))
    assert type(pipeline.transforms[0]).__name__ == 'LoadImageFromNDArray'
    assert pipeline.transforms[0].to_float32


def test_drawing_converts_float_and_grey_images():
    from rcnn_plugin.apis import draw_detections
    det = [dict(bbox_xyxy=[1, 1, 5, 4], label=0, score=0.9)]
    grey = draw_detections(np.full((6, 8), 100.4, np.float32), det, ['a'])
    assert grey.shape == (6, 8, 3) and grey.dtype == np.uint8
    assert grey[0, 7].tolist() == [100, 100, 100]


def test_error_gallery_reads_as_the_loader_and_keeps_the_image(tmp_path):
    from rcnn_plugin.apis.error_analysis import draw_error, write_gallery
    from rcnn_plugin.apis.inputs import image_reader
    _write_12bit(tmp_path / 'a.png')
    entry = dict(image=str(tmp_path / 'a.png'), type='Cls', box=[2, 2, 6, 4],
                 label=0, score=0.8, gt_box=[2, 2, 6, 4], gt_label=1)
    read = image_reader(dict(type='LoadDomainImageFromFile',
                             value_range=(0, 4080)))
    write_gallery({'a': [entry]}, ['a', 'b'], str(tmp_path / 'g'), pad=0.0,
                  read=read)
    import cv2
    crop = cv2.imread(str(tmp_path / 'g' / entry['file']))
    # The windowed 12-bit image, not its dark 8-bit reading (12, 6, 3):
    # the box's centre, upscaled so the longer side is 192 px.
    assert max(crop.shape[:2]) == 192
    h, w = crop.shape[:2]
    assert np.abs(crop[h // 2, w // 2].astype(int) - (200, 100, 50)).max() <= 2
    # A crop that needs no upscaling is a copy: the source is not drawn on.
    big = np.zeros((300, 300), np.float32)
    drawn = draw_error(big, dict(entry, box=[0, 0, 299, 299],
                                 gt_box=[0, 0, 299, 299]), ['a', 'b'], 0.0)
    assert drawn.dtype == np.uint8 and drawn.shape[2] == 3 and drawn.any()
    assert not big.any()


def test_error_gallery_removes_the_crops_of_an_earlier_run(tmp_path):
    # A second run into one --out-dir kept the first run's crops beside
    # its own: the gallery showed errors that no longer exist.
    import cv2

    from rcnn_plugin.apis.error_analysis import write_gallery
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((20, 30, 3), np.uint8))
    entry = dict(image=str(tmp_path / 'a.png'), type='Cls', box=[2, 2, 6, 4],
                 label=0, score=0.8, gt_box=None, gt_label=None)
    miss = dict(entry, type='Miss', score=None, gt_box=[2, 2, 6, 4],
                gt_label=0)
    gallery = tmp_path / 'g'
    write_gallery({'old cls': [entry, miss], 'b': [entry]}, ['old cls', 'b'],
                  str(gallery))
    assert sorted(p.name for p in gallery.rglob('*.png')) == [
        '00_Cls_a.png', '00_Cls_a.png', '01_Miss_a.png']
    (gallery / 'b' / 'notes.txt').write_text('mine')  # not the tool's
    (gallery / 'b' / 'my_crop.png').write_bytes(b'')
    write_gallery({'b': [miss]}, ['b'], str(gallery))
    assert sorted(str(p.relative_to(gallery)) for p in gallery.rglob('*')
                  if p.is_file()) == [
        'b/00_Miss_a.png', 'b/my_crop.png', 'b/notes.txt', 'index.json',
        'index.md']
    assert not (gallery / 'old_cls').exists()  # a class of the first run
    # Two classes with one key ('a+b', 'a&b' -> 'a_b') keep their own
    # folders (they shared one: same-named crops overwrote each other).
    write_gallery({'a+b': [entry], 'a&b': [entry]}, ['a+b', 'a&b'],
                  str(gallery))
    assert (gallery / 'a_b' / '00_Cls_a.png').is_file()
    assert (gallery / 'a_b_' / '00_Cls_a.png').is_file()


def test_split_reader_follows_the_split_loader(tmp_path):
    from unittest.mock import patch

    import cv2
    import numpy as np
    from mmengine.config import Config

    from rcnn_plugin.apis.inputs import read_image, split_reader
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((4, 5, 3), 2000, np.uint16))
    domain = dict(type='LoadDomainImageFromFile', value_range=(0, 4000))
    cfg = Config(dict(
        test_dataloader=dict(dataset=dict(
            type='ClassSubsetDataset', dataset=dict(pipeline=[domain]))),
        val_dataloader=dict(dataset=dict(
            pipeline=[dict(type='LoadImageFromFile')]))))
    # The test split's window: 2000 of 0..4000 is mid-grey, not 8 bits.
    image = split_reader(cfg, 'test')(str(tmp_path / 'a.png'))
    assert np.abs(image.astype(int) - 128).max() <= 1
    assert split_reader(cfg, 'val') is read_image
    assert split_reader(Config(dict()), 'val') is read_image
    # Inner datasets that load differently: the first's, and a warning.
    mmdet_loader = dict(type='LoadImageFromFile')
    cfg.test_dataloader.dataset = dict(type='ConcatDataset', datasets=[
        dict(pipeline=[domain]), dict(pipeline=[mmdet_loader])])
    with patch('rcnn_plugin.apis.inputs.print_log') as log:
        image = split_reader(cfg, 'test')(str(tmp_path / 'a.png'))
    assert np.abs(image.astype(int) - 128).max() <= 1
    assert 'load images differently' in log.call_args[0][0]
