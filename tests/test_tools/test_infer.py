"""tools/infer.py on a generated image folder and a cv2-written video."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO, run_tool

pytestmark = pytest.mark.slow

CLASSES = ('rbc', 'wbc', 'platelet')


@pytest.fixture
def tiny_checkpoint(tiny_config, tmp_path):
    """The tiny model's initial weights, saved as a checkpoint."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    model = MODELS.build(Config.fromfile(tiny_config).model)
    model.init_weights()
    path = str(tmp_path / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=CLASSES))), path)
    return path


def _cells(rng, h=72, w=96):
    image = np.full((h, w, 3), 230, np.uint8)
    for _ in range(4):
        c = (int(rng.integers(8, w - 8)), int(rng.integers(8, h - 8)))
        cv2.circle(image, c, int(rng.integers(4, 10)), (90, 60, 200), -1)
    return image


def test_image_folder_with_a_corrupt_file(tiny_config, tiny_checkpoint,
                                          tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f'img_{i}.png'), _cells(rng))
    (folder / 'corrupt.jpg').write_bytes(b'\xff\xd8\xff not a jpeg')
    out = tmp_path / 'out'
    log = run_tool(['tools/infer.py', tiny_config, tiny_checkpoint,
                    str(folder), '--out-dir', str(out), '--batch-size', '3',
                    '--score-thr', '0', '--no-progress'])
    assert 'skipping' in log and 'corrupt.jpg' in log
    summary = json.load(open(out / 'summary.json'))
    assert summary['processed'] == 4 and summary['skipped'] == 1
    assert summary['skipped_items'][0].endswith('corrupt.jpg')
    images = json.load(open(out / 'images.json'))
    assert sorted(i['file_name'] for i in images['images']) == [
        f'img_{i}.png' for i in range(4)]
    assert [c['name'] for c in images['categories']] == list(CLASSES)
    results = json.load(open(out / 'results.json'))
    assert len(results) == summary['detections'] > 0
    ids = {i['id'] for i in images['images']}
    assert {r['image_id'] for r in results} <= ids
    assert {r['category_id'] for r in results} <= {1, 2, 3}
    for i in range(4):
        vis = cv2.imread(str(out / 'vis' / f'img_{i}.png'))
        assert vis.shape == (72, 96, 3)


def test_sliced_inference_on_an_image_folder(tiny_config, tiny_checkpoint,
                                             tmp_path):
    pytest.importorskip('sahi', reason='--slice needs the sahi extra')
    rng = np.random.default_rng(1)
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f'big_{i}.png'), _cells(rng, 150, 200))
    out = tmp_path / 'out'
    run_tool(['tools/infer.py', tiny_config, tiny_checkpoint, str(folder),
              '--out-dir', str(out), '--slice', '96', '--overlap', '0.2',
              '--score-thr', '0', '--no-progress'])
    summary = json.load(open(out / 'summary.json'))
    assert summary['complete'] and summary['processed'] == 2
    for result in json.load(open(out / 'results.json')):
        x, y, w, h = result['bbox']  # COCO xywh, in the whole image
        assert 0 <= x and x + w <= 200.01 and 0 <= y and y + h <= 150.01


def _write_clip(path, frames=6) -> str:
    """An MJPG clip of ``frames`` synthetic cell images (96x72)."""
    rng = np.random.default_rng(1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 5,
                             (96, 72))
    for _ in range(frames):
        writer.write(_cells(rng))
    writer.release()
    return str(path)


def test_video_frames_jsonl_and_class_filter(tiny_config, tiny_checkpoint,
                                             tmp_path):
    video = _write_clip(tmp_path / 'clip.avi')
    out = tmp_path / 'out'
    run_tool(['tools/infer.py', tiny_config, tiny_checkpoint, video,
              '--out-dir', str(out), '--batch-size', '4', '--score-thr',
              '0', '--classes', 'wbc', '--no-progress'])
    lines = (out / 'clip_frames.jsonl').read_text().splitlines()
    frames = [json.loads(line) for line in lines]
    assert [f['frame'] for f in frames] == list(range(6))
    assert frames[2]['time_s'] == pytest.approx(0.4)
    labels = {d['class_name'] for f in frames for d in f['detections']}
    assert labels <= {'wbc'}
    results = json.load(open(out / 'results.json'))
    assert len(results) == sum(len(f['detections']) for f in frames)
    assert {r['category_id'] for r in results} <= {2}
    cap = cv2.VideoCapture(str(out / 'clip_annotated.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    summary = json.load(open(out / 'summary.json'))
    assert summary['frames_reported'] == 6
    assert summary['unread_at_end'] == 0 and summary['skipped'] == 0


def test_truncated_video_is_counted_not_reported_corrupt(
        tiny_config, tiny_checkpoint, tmp_path):
    video = _write_clip(tmp_path / 'clip.avi')
    with open(video, 'rb') as f:
        data = f.read()
    with open(video, 'wb') as f:  # a cut download: the header says 6
        f.write(data[:len(data) // 2])
    out = tmp_path / 'out'
    output = run_tool(['tools/infer.py', tiny_config, tiny_checkpoint,
                       video, '--out-dir', str(out), '--no-vis',
                       '--no-progress'])
    summary = json.load(open(out / 'summary.json'))
    assert summary['frames_reported'] == 6 and summary['skipped'] == 0
    assert summary['processed'] + summary['unread_at_end'] == 6
    assert summary['unread_at_end'] > 0
    assert 'did not decode (a truncated file' in output


def test_unknown_class_is_refused(tmp_path):
    import argparse
    import importlib.util

    from conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'infer_tool', osp.join(REPO, 'tools', 'infer.py'))
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    predictor = argparse.Namespace(classes=list(CLASSES))
    args = argparse.Namespace(classes=['wbc', 'neutrophil'],
                              out_dir=str(tmp_path))
    with pytest.raises(SystemExit, match="unknown \\['neutrophil'\\]"):
        infer.Run(args, predictor)
    args.classes = ['platelet', 'rbc']
    assert infer.Run(args, predictor).keep == [2, 0]


def test_16bit_images_go_through_the_configs_domain_loader(
        tiny_config, tiny_checkpoint, tmp_path):
    """A config whose test pipeline reads 12-bit data in 16-bit PNGs with
    LoadDomainImageFromFile and a window: the Predictor and tools/infer.py
    read files with that loader (mmdet's inferencer refused the config)."""
    from mmengine.config import Config

    from rcnn_plugin.apis import Predictor
    cfg = Config.fromfile(tiny_config)
    cfg.test_dataloader.dataset.pipeline[0] = dict(
        type='LoadDomainImageFromFile', value_range=(0, 4080))
    config = str(tmp_path / 'domain.py')
    cfg.dump(config)
    folder = tmp_path / 'images'
    folder.mkdir()
    image8 = _cells(np.random.default_rng(0))
    cv2.imwrite(str(folder / 'cells16.png'), image8.astype(np.uint16) * 16)
    predictor = Predictor(config, tiny_checkpoint)
    image = predictor.read(str(folder / 'cells16.png'))
    assert np.abs(image.astype(int) - image8).max() <= 1
    assert len(predictor.predict([image])) == 1
    out = tmp_path / 'out'
    run_tool(['tools/infer.py', config, tiny_checkpoint, str(folder),
              '--out-dir', str(out), '--score-thr', '0', '--no-progress'])
    summary = json.load(open(out / 'summary.json'))
    assert summary['processed'] == 1 and summary['skipped'] == 0


class _FailsOnSecondBatch:
    """A predictor whose second batch raises, as a real backend may
    (an image larger than a static ONNX graph)."""
    classes = CLASSES
    needs_proposals = False

    def __init__(self):
        self.calls = 0

    def read(self, path):
        return cv2.imread(path)

    def predict(self, images):
        from mmengine.structures import InstanceData
        self.calls += 1
        if self.calls == 2:
            raise ValueError('input 72x96 is larger than the static graph')
        return [InstanceData(bboxes=torch.tensor([[1., 2., 30., 40.]]),
                             scores=torch.tensor([0.9]),
                             labels=torch.tensor([1])) for _ in images]


def _tool_and_folder(tmp_path, num_images):
    """tools/infer.py as a module, and a folder of ``num_images`` smears."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'infer_tool', osp.join(REPO, 'tools', 'infer.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rng = np.random.default_rng(0)
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(num_images):
        cv2.imwrite(str(folder / f'img_{i}.png'), _cells(rng))
    return tool, str(folder)


def test_an_error_mid_run_keeps_the_done_images(tiny_config, tmp_path,
                                                capsys):
    tool, folder = _tool_and_folder(tmp_path, 5)
    out = tmp_path / 'out'
    args = tool.parse_args([tiny_config, 'none', folder, '--out-dir',
                            str(out), '--batch-size', '2', '--no-progress'])
    with pytest.raises(ValueError, match='static graph'):
        tool.infer(args, _FailsOnSecondBatch())
    err = capsys.readouterr().err
    assert 'stopped at img_2.png, img_3.png; the 2 images/frames done' in err
    summary = json.load(open(out / 'summary.json'))
    assert summary['complete'] is False and summary['processed'] == 2
    assert summary['stopped_at'] == ['img_2.png', 'img_3.png']
    assert len(json.load(open(out / 'results.json'))) == 2
    assert [i['file_name'] for i in json.load(
        open(out / 'images.json'))['images']] == ['img_0.png', 'img_1.png']


class _FailsToReadTheThird(_FailsOnSecondBatch):
    def read(self, path):
        if path.endswith('img_2.png'):
            raise ValueError('a broken decoder')
        return cv2.imread(path)

    def predict(self, images):
        self.calls = 0  # predicting never fails here
        return super().predict(images)


@pytest.mark.parametrize('batch_size,done', [(1, 2), (3, 0)])
def test_an_error_while_reading_names_that_image(tiny_config, tmp_path,
                                                 capsys, batch_size, done):
    # with --batch-size 3, img_0 and img_1 wait in the batch: they were
    # named instead of the image that failed
    tool, folder = _tool_and_folder(tmp_path, 4)
    out = tmp_path / 'out'
    args = tool.parse_args([tiny_config, 'none', folder, '--out-dir',
                            str(out), '--no-progress', '--batch-size',
                            str(batch_size)])
    with pytest.raises(ValueError, match='broken decoder'):
        tool.infer(args, _FailsToReadTheThird())
    assert f'stopped at img_2.png; the {done} images/frames' in \
        capsys.readouterr().err
    summary = json.load(open(out / 'summary.json'))
    assert summary['stopped_at'] == ['img_2.png']


class _Detects(_FailsToReadTheThird):
    """Reads every image (by content, as OpenCV does) and predicts."""

    def read(self, path):
        return cv2.imread(path)


def test_vis_of_formats_opencv_does_not_write(tiny_config, tmp_path):
    # .jfif has no OpenCV writer (a cv2.error stopped the folder) and the
    # .pgm / .pbm writers refuse colour (the drawing went missing)
    tool, folder = _tool_and_folder(tmp_path, 0)
    image = _cells(np.random.default_rng(2))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(f'{folder}/a.png', image)
    with open(f'{folder}/a.jfif', 'wb') as f:  # a JPEG by content
        f.write(cv2.imencode('.jpg', image)[1].tobytes())
    cv2.imwrite(f'{folder}/a.jfif.png', image)  # the name a.jfif could get
    cv2.imwrite(f'{folder}/b.pgm', gray)
    cv2.imwrite(f'{folder}/c.pbm', (gray > 128).astype(np.uint8))
    out = tmp_path / 'out'
    summary = tool.infer(tool.parse_args(
        [tiny_config, 'none', folder, '--out-dir', str(out),
         '--no-progress', '--batch-size', '2']), _Detects())
    assert summary['processed'] == 5 and summary['vis_failed'] == 0
    names = sorted(p.name for p in (out / 'vis').iterdir())
    assert names == ['a.jfif.png', 'a.jfif_1.png', 'a.png', 'b.pgm.png',
                     'c.pbm.png']
    for name in names:
        assert cv2.imread(str(out / 'vis' / name)).shape == (72, 96, 3)


def test_a_failed_vis_write_is_counted(tiny_config, tmp_path, monkeypatch,
                                       capsys):
    tool, folder = _tool_and_folder(tmp_path, 2)
    monkeypatch.setattr(cv2, 'imwrite', lambda *args: False)  # disk full
    out = tmp_path / 'out'
    summary = tool.infer(tool.parse_args(
        [tiny_config, 'none', folder, '--out-dir', str(out),
         '--no-progress']), _Detects())
    assert summary['processed'] == 2 and summary['vis_failed'] == 2
    assert summary['vis_failed_items'] == ['img_0.png', 'img_1.png']
    assert 'could not write' in capsys.readouterr().err
    assert json.load(open(out / 'summary.json'))['vis_failed'] == 2


class _SliceAndFullImage(_Detects):
    """On the left 64x64 slice a box at 0.9; on the full image a wider
    box of the same object at 0.1; nothing on the right slice."""

    def predict(self, images):
        from mmengine.structures import InstanceData
        out = []
        for image in images:
            box, score = ([[10., 10., 60., 50.]], [0.1]) if \
                image.shape[1] == 128 else ([[10., 10., 50., 50.]], [0.9])
            n = int(image[0, 0, 0] == 0)  # the right half is white
            out.append(InstanceData(
                bboxes=torch.tensor(box).reshape(-1, 4)[:n],
                scores=torch.tensor(score)[:n],
                labels=torch.tensor([1])[:n]))
        return out


def test_sliced_merge_sees_only_boxes_above_score_thr(
        tiny_config, tmp_path, monkeypatch):
    pytest.importorskip('sahi', reason='--slice needs the sahi extra')
    tool, folder = _tool_and_folder(tmp_path, 0)
    image = np.zeros((64, 128, 3), np.uint8)
    image[:, 64:] = 255
    cv2.imwrite(f'{folder}/big.png', image)
    monkeypatch.setattr(tool, 'make_predictor',
                        lambda *args: _SliceAndFullImage())
    out = tmp_path / 'out'
    tool.run(tool.parse_args(
        [tiny_config, 'none', folder, '--out-dir', str(out), '--slice',
         '64', '--overlap', '0', '--slice-merge', 'greedynmm',
         '--slice-full', '--score-thr', '0.5', '--no-progress']))
    results = json.load(open(out / 'results.json'))
    # the 0.1 box no longer widens the kept one to [10, 10, 60, 50]
    assert [r['bbox'] for r in results] == [[10., 10., 40., 40.]]
    assert results[0]['score'] == pytest.approx(0.9)


def test_a_device_this_torch_lacks_is_a_sentence(tiny_config, tmp_path,
                                                 monkeypatch, capsys):
    tool, folder = _tool_and_folder(tmp_path, 1)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for device, says in (('cuda', 'no CUDA'), ('gpu', 'not a device')):
        with pytest.raises(SystemExit):
            tool.main([tiny_config, 'none', folder, '--out-dir',
                       str(tmp_path / 'out'), '--device', device])
        assert f'--device {device}: {says}' in capsys.readouterr().err
