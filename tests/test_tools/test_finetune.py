"""tools/finetune.py on tiny generated folders, as a user runs it."""
import csv
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

TOOL = osp.join(REPO, 'tools', 'finetune.py')
CLASSES = ('cell', 'blob')


def _image(rng, size=(96, 72)):
    """A noise image with two filled rectangles (one per class)."""
    w, h = size
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    boxes = []
    for label, colour in enumerate(((220, 40, 40), (40, 220, 40))):
        bw, bh = rng.integers(18, 30, 2)
        x1, y1 = rng.integers(0, w - bw), rng.integers(0, h - bh)
        img[y1:y1 + bh, x1:x1 + bw] = colour
        boxes.append((label, int(x1), int(y1), int(x1 + bw), int(y1 + bh)))
    return Image.fromarray(img), boxes


def make_yolo(root, n=10, seed=0):
    """Ultralytics layout: images/train, labels/train, data.yaml (no val)."""
    rng = np.random.default_rng(seed)
    for sub in ('images/train', 'labels/train'):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        img, boxes = _image(rng)
        img.save(root / 'images' / 'train' / f'{i:03d}.jpg')
        w, h = img.size
        with open(root / 'labels' / 'train' / f'{i:03d}.txt', 'w') as f:
            for c, x1, y1, x2, y2 in boxes:
                f.write(f'{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f}'
                        f' {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}\n')
    (root / 'data.yaml').write_text(
        'names:\n' + ''.join(f'  - {c}\n' for c in CLASSES))
    return root


def make_labelimg_voc(root, n=10, seed=1, ext='png'):
    """LabelImg: annotations/*.xml and images/*.png, no ImageSets."""
    rng = np.random.default_rng(seed)
    (root / 'images').mkdir(parents=True)
    (root / 'annotations').mkdir()
    for i in range(n):
        img, boxes = _image(rng)
        name = f'img{i:03d}.{ext}'
        img.save(root / 'images' / name)
        objs = ''.join(
            f'<object><name>{CLASSES[c]}</name><difficult>0</difficult>'
            f'<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>'
            f'<ymax>{y2}</ymax></bndbox></object>'
            for c, x1, y1, x2, y2 in boxes)
        (root / 'annotations' / f'img{i:03d}.xml').write_text(
            f'<annotation><folder>images</folder><filename>{name}'
            f'</filename><size><width>{img.size[0]}</width><height>'
            f'{img.size[1]}</height><depth>3</depth></size>{objs}'
            '</annotation>')
    return root


def make_csv(root, n=10, seed=2):
    """bcd-like CSV: normalised coordinates, RGBA PNGs, no split."""
    rng = np.random.default_rng(seed)
    (root / 'images').mkdir(parents=True)
    with open(root / 'annotations.csv', 'w', newline='') as f:
        out = csv.writer(f)
        out.writerow(['image_id', 'image', 'xmin', 'ymin', 'xmax', 'ymax',
                      'label'])
        for i in range(n):
            img, boxes = _image(rng)
            img.convert('RGBA').save(root / 'images' / f'image-{i}.png')
            w, h = img.size
            for c, x1, y1, x2, y2 in boxes:
                out.writerow([i, f'image-{i}.png', x1 / w, y1 / h, x2 / w,
                              y2 / h, CLASSES[c]])
    return root


def make_coco(root, n=10, seed=3):
    """A COCO json next to its image folder (not under annotations/)."""
    rng = np.random.default_rng(seed)
    (root / 'train').mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        img, boxes = _image(rng)
        img.save(root / 'train' / f'{i}.jpg')
        images.append(dict(id=i, file_name=f'{i}.jpg', width=img.size[0],
                           height=img.size[1]))
        for c, x1, y1, x2, y2 in boxes:
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=c + 1,
                             bbox=[x1, y1, x2 - x1, y2 - y1],
                             area=(x2 - x1) * (y2 - y1), iscrowd=0))
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    (root / 'train' / '_annotations.coco.json').write_text(json.dumps(
        dict(images=images, annotations=anns, categories=cats)))
    return root


def make_labelme(root, n=10, seed=4):
    """LabelMe: one json per image with polygons, its labels.txt."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    (root / 'labels.txt').write_text(
        '__ignore__\n_background_\n' + '\n'.join(CLASSES) + '\n')
    for i in range(n):
        img, boxes = _image(rng)
        img.save(root / f'{i}.jpg')
        shapes = [dict(label=CLASSES[c], shape_type='polygon',
                       points=[[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
                  for c, x1, y1, x2, y2 in boxes]
        (root / f'{i}.json').write_text(json.dumps(dict(
            shapes=shapes, imagePath=f'{i}.jpg', imageWidth=img.size[0],
            imageHeight=img.size[1])))
    return root


@pytest.mark.parametrize('make,fmt,model', [
    (make_coco, 'coco', 'faster-rcnn'),
    (make_labelme, 'labelme', 'mask-rcnn'),
])
def test_dry_run_in_process(tmp_path, capsys, make, fmt, model):
    data = make(tmp_path / 'data')
    work = tmp_path / 'work'
    rc, out = finetune_here(
        [data, '--work-dir', work, '--dry-run', '--model', model], capsys)
    assert rc == 0, out[-4000:]
    assert f'({fmt};' in out and '[finetune] checks passed' in out
    (config, ) = work.glob(f'{model}_finetune_*.py')
    from mmengine.config import Config
    cfg = Config.fromfile(str(config))
    assert cfg.model.roi_head.bbox_head.num_classes == 2
    assert cfg.optim_wrapper.optimizer.lr == 0.01  # batch 4 or 2: floor
    if model == 'mask-rcnn':
        assert cfg.model.roi_head.mask_head.num_classes == 2
        assert cfg.train_dataloader.dataset.dataset.pipeline[1][
            'with_mask']


def finetune_here(args, capsys):
    """Run the tool in this process (faster): exit status and output."""
    from rcnn_plugin.apis.finetune import main
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def finetune(args, timeout=900):
    proc = subprocess.run(
        [sys.executable, TOOL] + [str(a) for a in args], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=timeout, env={'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1',
                              'PATH': '/usr/bin:/bin'})
    return proc.returncode, proc.stdout


def test_an_earlier_run_is_not_overwritten_silently(tmp_path, capsys):
    data = make_yolo(tmp_path / 'data')
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(work / 'epoch_3.pth'))
    args = [data, '--work-dir', work, '--dry-run']
    rc, out = finetune_here(args, capsys)
    assert rc == 2
    assert 'holds an earlier run (last_checkpoint): add --resume' in out
    assert not list(work.glob('*.py'))  # refused before writing anything
    rc, out = finetune_here(args + ['--resume', '--overwrite'], capsys)
    assert rc == 2 and 'exclude each other' in out
    rc, out = finetune_here(args + ['--overwrite'], capsys)
    assert rc == 0, out[-4000:]
    assert (work / 'last_checkpoint').is_file()  # a dry run removes nothing


def test_a_resume_keeps_the_split_it_started_with(tmp_path, capsys):
    # --resume detected, split and wrote the config again: another --seed
    # (or --epochs, or a changed folder) continued the checkpoint on
    # another split, its val images trained on
    data = make_yolo(tmp_path / 'data')
    work = tmp_path / 'work'
    args = [data, '--work-dir', work, '--dry-run']
    rc, out = finetune_here(args + ['--seed', 1], capsys)
    assert rc == 0, out[-4000:]
    val = (work / 'splits' / 'val.txt').read_text()
    (work / 'last_checkpoint').write_text(str(work / 'epoch_3.pth'))
    rc, out = finetune_here(args + ['--resume', '--seed', 1], capsys)
    assert rc == 0, out[-4000:]  # the same options: resumed as started
    rc, out = finetune_here(args + ['--resume'], capsys)
    assert rc == 2
    assert 'was started on another split (' in out
    assert 'splits/val.txt differ' in out.replace('\n', ' ')
    assert (work / 'splits' / 'val.txt').read_text() == val  # put back
    # another option only: resumed with the new config, and said so
    rc, out = finetune_here(args + ['--resume', '--seed', 1, '--epochs', 9],
                            capsys)
    assert rc == 0, out[-4000:]
    assert "faster-rcnn_finetune_data.py differ from the run's" in out
    # a failure after the split was drawn again puts the run's files back
    rc, out = finetune_here(args + ['--resume', '--from', work / 'none.pth'],
                            capsys)
    assert rc == 2 and 'no such file' in out
    assert (work / 'splits' / 'val.txt').read_text() == val


def test_the_written_config_runs_from_any_directory(tmp_path, capsys,
                                                   monkeypatch):
    # relative split lists and no work_dir: tools/train.py CONFIG --resume
    # from another directory found nothing and trained from scratch in
    # ./work_dirs/<config name>
    data = make_yolo(tmp_path / 'data')
    monkeypatch.chdir(tmp_path)
    rc, out = finetune_here([data, '--work-dir', 'run', '--dry-run'],
                            capsys)
    assert rc == 0, out[-4000:]
    from mmengine.config import Config
    (path, ) = (tmp_path / 'run').glob('*_finetune_*.py')
    cfg = Config.fromfile(str(path))
    assert cfg.work_dir == str(tmp_path / 'run')
    assert cfg.train_dataloader.dataset.img_list == str(
        tmp_path / 'run' / 'splits' / 'train.txt')


def test_overwrite_removes_the_earlier_runs_checkpoints(tmp_path, capsys):
    from rcnn_plugin.apis.finetune.run import clear_earlier_run
    work = tmp_path / 'work'
    (work / '20261207_060000').mkdir(parents=True)
    for name in ('epoch_8.pth', 'best_pascal_voc_mAP_epoch_7.pth',
                 'last_checkpoint', 'finetune.json', 'config.py',
                 'from_checkpoint.pth'):  # the new run's --from weights
        (work / name).write_text('x')
    removed = clear_earlier_run(str(work))
    assert removed == ['best_pascal_voc_mAP_epoch_7.pth', 'epoch_8.pth',
                       'finetune.json', 'last_checkpoint']
    assert sorted(p.name for p in work.iterdir()) == [
        '20261207_060000', 'config.py', 'from_checkpoint.pth']
    assert 'removed the earlier run' in capsys.readouterr().out
    assert clear_earlier_run(str(work)) == []


@pytest.mark.parametrize('make,fmt', [(make_yolo, 'yolo'),
                                      (make_labelimg_voc, 'voc'),
                                      (make_csv, 'csv')])
def test_dry_run_detects_and_writes_a_config(tmp_path, make, fmt):
    data = make(tmp_path / 'data')
    work = tmp_path / 'work'
    rc, out = finetune([data, '--work-dir', work, '--dry-run'])
    assert rc == 0, out[-4000:]
    assert f'({fmt};' in out
    assert '2 classes' in out and 'cell' in out and 'blob' in out
    # No val split in the data: a seeded, stratified one was written.
    assert 'no validation split in the data' in out
    train = (work / 'splits' / 'train.txt').read_text().split()
    val = (work / 'splits' / 'val.txt').read_text().split()
    assert len(train) == 8 and len(val) == 2 and not set(train) & set(val)
    # Small images are scaled up to a long side of 512.
    assert 'input scale (512, 384)' in out
    configs = list(work.glob('faster-rcnn_finetune_*.py'))
    assert len(configs) == 1
    # The written config is a normal config that tools/train.py can load.
    from mmengine.config import Config
    cfg = Config.fromfile(str(configs[0]))
    assert cfg.model.roi_head.bbox_head.num_classes == 2
    assert cfg.train_dataloader.dataset.type == 'ImageSubsetDataset'


def test_split_is_deterministic(tmp_path):
    data = make_yolo(tmp_path / 'data')
    lists = []
    for run in ('a', 'b'):
        work = tmp_path / run
        rc, out = finetune([data, '--work-dir', work, '--dry-run'])
        assert rc == 0, out[-3000:]
        lists.append((work / 'splits' / 'val.txt').read_text())
    assert lists[0] == lists[1] and lists[0].strip()  # a val split drawn


def test_yolo_folder_trains_and_writes_the_run_folder(tmp_path):
    data = make_yolo(tmp_path / 'data', n=8)
    work = tmp_path / 'work'
    args = [data, '--work-dir', work, '--img-size', 128, '--batch-size', 2]
    rc, out = finetune(args + ['--epochs', 1])
    assert rc == 0, out[-6000:]
    assert '[train] seed 0' in out
    assert '[finetune] checks passed' in out
    result = json.loads((work / 'finetune.json').read_text())
    assert len(result['val']) == 1  # one validation per epoch
    assert 'pascal_voc/mAP' in result['test']
    assert result['best_checkpoint'].startswith('best_pascal_voc_mAP')
    # No test split in the data: the test is on val, and says so.
    assert result['test_split'] == 'val'
    assert 'test on val (the data has no test split' in out
    assert result['epochs'] == dict(run=1, planned=1, stopped_early=False)
    assert (result['lr'], result['batch_size']) == (0.01, 2)
    summary = (work / 'summary.md').read_text()
    assert '## test metrics (checkpoint `best_pascal_voc_mAP_epoch_1.pth`)' \
        in summary and 'Note: the data has no test split' in summary
    for name in ('results.csv', 'results.png', 'labels.png', 'summary.md',
                 'val_predictions.jpg', 'val_confusion_matrix.png',
                 'best.pth', 'last.pth', 'health.json'):
        assert (work / name).exists(), name
    # --resume with a longer schedule continues the same run folder.
    rc, out = finetune(args + ['--epochs', 2, '--resume'])
    assert rc == 0, out[-6000:]
    assert 'resumed epoch: 1' in out.lower() or 'resumed' in out.lower()
    with open(work / 'results.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['epoch'] for r in rows] == ['1', '2']
    assert all(r['val/loss'] and r['pascal_voc/mAP'] for r in rows)
    # finetune.json lists both attempts' validations (it had the last's)
    result = json.loads((work / 'finetune.json').read_text())
    assert len(result['val']) == 2 and result['resumed'] is True


def test_bad_images_are_counted_and_listed(tmp_path, capsys):
    data = make_yolo(tmp_path / 'data')
    (data / 'images' / 'train' / '003.jpg').write_bytes(b'not a jpeg')
    rc, out = finetune_here(
        [data, '--dry-run', '--work-dir', tmp_path / 'w'], capsys)
    assert rc == 0, out[-3000:]
    assert 'skipped 1 image(s) that are missing or do not decode' in out
    assert '003.jpg' in out


def test_device_cuda_without_cuda_is_an_error(tmp_path, capsys,
                                              monkeypatch):
    # It trained on the CPU without a word.
    import rcnn_plugin.apis.finetune.run_folder as run_folder
    monkeypatch.setattr(run_folder, '_has_cuda', lambda: False)
    rc, out = finetune_here([make_yolo(tmp_path / 'data'), '--device',
                             'cuda', '--work-dir', tmp_path / 'w'], capsys)
    assert rc == 2 and 'no CUDA device' in out


def test_gpus_go_through_dist_train(tmp_path, capsys, monkeypatch):
    import rcnn_plugin.apis.finetune.cli as cli
    calls = []
    monkeypatch.setattr(cli.subprocess, 'call',
                        lambda cmd, env: calls.append(cmd) or 0)
    data = make_yolo(tmp_path / 'data')
    (tmp_path / 'w').mkdir()
    (tmp_path / 'w' / 'epoch_12.pth').write_text('an earlier run')
    rc, out = finetune_here(
        [data, '--work-dir', tmp_path / 'w', '--gpus', 2, '--overwrite'],
        capsys)
    assert rc == 0, out[-3000:]
    assert not (tmp_path / 'w' / 'epoch_12.pth').exists()
    (cmd, ) = calls
    assert cmd[1].endswith('tools/dist_train.sh')
    assert cmd[2].endswith('faster-rcnn_finetune_data.py') and cmd[3] == '2'
    assert cmd[4:] == ['--work-dir', str(tmp_path / 'w')]
    assert 'trains only: test the best checkpoint' in out
    # The lr is set for both processes' images: the doctor agrees.
    from mmengine.config import Config

    from rcnn_plugin.config_doctor import run_checks
    cfg = Config.fromfile(cmd[2])
    assert cfg.auto_scale_lr.base_batch_size == 8  # 4 x 2 processes
    assert not [f for f in run_checks(cfg, world_size=2)
                if f.check == 'learning_rate']


@pytest.mark.parametrize('args,expect', [
    (['--model', 'mask-rcnn'], 'needs polygon or mask annotations'),
    (['--model', 'fast-rcnn'], 'trains on precomputed proposals'),
    (['--val-fraction', '1.5'], 'give a fraction in (0, 1)'),
])
def test_unfit_options_are_sentences(tmp_path, capsys, args, expect):
    data = make_yolo(tmp_path / 'data')
    rc, out = finetune_here(
        [data, '--work-dir', tmp_path / 'w', '--dry-run'] + args, capsys)
    assert rc == 2, out[-3000:]
    assert expect in out
    assert 'Traceback' not in out


def test_folder_without_labels_is_an_error(tmp_path, capsys):
    (tmp_path / 'data').mkdir()
    Image.new('RGB', (32, 32)).save(tmp_path / 'data' / 'a.jpg')
    rc, out = finetune_here(
        [tmp_path / 'data', '--dry-run', '--work-dir', tmp_path / 'w'],
        capsys)
    assert rc == 2 and 'Traceback' not in out, out[-3000:]
    assert 'error:' in out


def test_class_only_in_validation_is_an_error(tmp_path, capsys):
    data = make_yolo(tmp_path / 'data', n=6)
    (data / 'images' / 'val').mkdir()
    (data / 'labels' / 'val').mkdir()
    Image.new('RGB', (96, 72)).save(data / 'images' / 'val' / 'v.jpg')
    (data / 'labels' / 'val' / 'v.txt').write_text('1 0.5 0.5 0.2 0.2\n')
    for txt in (data / 'labels' / 'train').glob('*.txt'):  # no blob left
        lines = [ln for ln in txt.read_text().splitlines()
                 if ln.startswith('0 ')]
        txt.write_text('\n'.join(lines) + '\n')
    rc, out = finetune_here(
        [data, '--dry-run', '--work-dir', tmp_path / 'w'], capsys)
    assert rc == 2, out[-3000:]
    assert "classes ['blob'] have objects in the validation split" in out


def test_sixteen_bit_images_get_the_domain_loader(tmp_path, capsys):
    data = tmp_path / 'data'
    for sub in ('images/train', 'labels/train'):
        (data / sub).mkdir(parents=True)
    for i in range(6):
        pixels = np.full((72, 96), 300, np.uint16)
        pixels[20:40, 30:60] = 4000  # a 12-bit blob
        Image.fromarray(pixels).save(data / 'images' / 'train' / f'{i}.png')
        (data / 'labels' / 'train' / f'{i}.txt').write_text(
            '0 0.469 0.417 0.3125 0.278\n')
    (data / 'data.yaml').write_text('names:\n  0: blob\n')
    rc, out = finetune_here(
        [data, '--dry-run', '--work-dir', tmp_path / 'w'], capsys)
    assert rc == 0, out[-3000:]
    assert 'hold more than 8 bits per sample' in out
    from mmengine.config import Config
    (path, ) = (tmp_path / 'w').glob('*_finetune_*.py')
    dataset = Config.fromfile(str(path)).train_dataloader.dataset
    while 'pipeline' not in dataset:  # ImageSubsetDataset
        dataset = dataset.dataset
    assert dataset.pipeline[0]['type'] == 'LoadDomainImageFromFile'


def test_a_bad_test_split_stops_before_training(tmp_path, capsys):
    # only train and val were checked: a bad label file in the test split
    # failed after the whole training, with no finetune.json
    data = make_yolo(tmp_path / 'data')
    for split in ('val', 'test'):
        (data / 'images' / split).mkdir()
        (data / 'labels' / split).mkdir()
        Image.new('RGB', (96, 72)).save(data / 'images' / split / 'v.jpg')
        (data / 'labels' / split / 'v.txt').write_text('0 .5 .5 .2 .2\n')
    (data / 'labels' / 'test' / 'lost.txt').write_text('0 .5 .5 .2 .2\n')
    rc, out = finetune_here(
        [data, '--dry-run', '--work-dir', tmp_path / 'w'], capsys)
    assert rc == 2, out[-3000:]
    assert 'lost.txt: has no image with the same name' in out


def test_from_a_backbone_checkpoint_is_an_error(tmp_path, capsys):
    import torch
    data = make_yolo(tmp_path / 'data')
    ckpt = tmp_path / 'backbone.pth'
    torch.save({'features.0.weight': torch.zeros(1)}, ckpt)
    rc, out = finetune_here(
        [data, '--dry-run', '--work-dir', tmp_path / 'w', '--from', ckpt],
        capsys)
    assert rc == 2, out[-3000:]
    assert 'is not an R-CNN detector checkpoint' in out
    assert not list((tmp_path / 'w').glob('*.py'))  # no config left


@pytest.mark.parametrize('agnostic', [False, True])
def test_from_one_class_detector_follows_the_written_heads(
        tmp_path, capsys, agnostic):
    """One source class: fc_reg's 4 rows are class-specific or agnostic
    by shape alike; the written config's reg_class_agnostic decides."""
    import torch
    data = make_yolo(tmp_path / 'data')
    ckpt = tmp_path / 'cell_detector.pth'
    state = _model_state(num_classes=1)
    reg = state['roi_head.bbox_head.fc_reg.weight']
    assert reg.shape[0] == 4
    torch.save({'meta': {'dataset_meta': {'classes': ('cell', )}},
                'state_dict': state}, ckpt)
    args = [data, '--dry-run', '--work-dir', tmp_path / 'w', '--from', ckpt]
    if agnostic:
        args += ['--cfg-options',
                 'model.roi_head.bbox_head.reg_class_agnostic=True']
    rc, out = finetune_here(args, capsys)
    assert rc == 0, out[-3000:]
    sd = torch.load(tmp_path / 'w' / 'from_checkpoint.pth',
                    weights_only=True)['state_dict']
    out_reg = sd['roi_head.bbox_head.fc_reg.weight']
    if agnostic:  # the same 4 deltas for every class
        assert torch.equal(out_reg, reg)
    else:  # cell keeps its rows, blob starts fresh
        assert out_reg.shape[0] == 8
        assert torch.equal(out_reg[:4], reg)
    assert "(100% of the model's weights)" in out


def _model_state(num_classes, model='faster-rcnn_mobilenetv2_fpn-128.py'):
    """A real state dict of a fine-tune model base (random weights)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models',
                                   model))
    cfg.model.backbone.init_cfg = None
    cfg.model.roi_head.bbox_head.num_classes = num_classes
    return MODELS.build(cfg.model).state_dict()


def test_from_a_checkpoint_of_another_architecture_is_an_error(
        tmp_path, capsys):
    # an mmdet model-zoo R50 checkpoint filled the heads only (strict=False
    # skipped the rest with log warnings): it started from ImageNet
    import torch
    state = {k: v for k, v in _model_state(1).items()
             if k.startswith('roi_head')}  # the R50 model's fitting part
    state['backbone.conv1.weight'] = torch.zeros(64, 3, 7, 7)
    rc, out = _finetune_from(tmp_path, capsys, state)
    assert rc == 2, out[-3000:]
    assert "fills 0% of the model's backbone and" in out
    assert 'missing or of other shapes: backbone.' in out
    assert not list((tmp_path / 'w').glob('*.py'))


def test_from_a_checkpoint_with_this_backbone_and_another_neck(tmp_path,
                                                              capsys):
    # the 256-channel BCCD GPU config's checkpoint: the backbone fits, the
    # neck and heads do not; it was refused (and its backbone loaded before)
    import torch
    state = {k: (v if k.startswith('backbone.') or '.fc_cls.' in k
                 or '.fc_reg.' in k else torch.zeros(3))
             for k, v in _model_state(1).items()}
    rc, out = _finetune_from(tmp_path, capsys, state)
    assert rc == 0, out[-3000:]
    share = int(out.split('from.pth (')[1].split('%')[0])
    assert 0 < share < 50


def _finetune_from(tmp_path, capsys, state):
    """A dry run --from a one-class ('cell') checkpoint of ``state``."""
    import torch
    data = make_yolo(tmp_path / 'data')
    ckpt = tmp_path / 'from.pth'
    torch.save({'meta': {'dataset_meta': {'classes': ('cell', )}},
                'state_dict': state}, ckpt)
    return finetune_here(
        [data, '--dry-run', '--work-dir', tmp_path / 'w', '--from', ckpt],
        capsys)


def test_console_command_points_at_the_tool():
    """pyproject's rcnn-finetune runs the same main as tools/finetune.py."""
    import importlib

    try:
        import tomllib
    except ImportError:  # Python < 3.11
        pytest.skip('tomllib needs Python 3.11')
    with open(osp.join(REPO, 'pyproject.toml'), 'rb') as f:
        scripts = tomllib.load(f)['project']['scripts']
    module, _, attr = scripts['rcnn-finetune'].partition(':')
    from rcnn_plugin.apis.finetune import main
    assert getattr(importlib.import_module(module), attr) is main
    assert 'from rcnn_plugin.apis.finetune import main' in open(TOOL).read()


def test_rare_class_missing_from_val_is_not_fatal(tmp_path, capsys):
    data = make_yolo(tmp_path / 'data')
    for i, txt in enumerate(sorted((data / 'labels' / 'train').glob('*'))):
        if i:  # blob (1) only in the first image
            lines = [ln for ln in txt.read_text().splitlines()
                     if ln.startswith('0 ')]
            txt.write_text('\n'.join(lines) + '\n')
    rc, out = finetune_here(
        [data, '--dry-run', '--work-dir', tmp_path / 'w'], capsys)
    assert rc == 0, out[-3000:]
    assert '[finetune] checks passed' in out


def test_too_few_images_to_split_is_a_sentence(tmp_path, capsys):
    data = make_yolo(tmp_path / 'data', n=1)
    rc, out = finetune_here(
        [data, '--dry-run', '--work-dir', tmp_path / 'w'], capsys)
    assert rc == 2, out[-3000:]
    assert out.count('error: ') == 1


def test_proposal_files_per_split():
    from rcnn_plugin.apis.finetune.cli import FinetuneError, _proposal_files
    train = dict(type='YOLODataset')
    val = dict(type='ImageSubsetDataset', dataset=dict(type='YOLODataset'),
               img_list='val.txt')
    datasets = dict(train=train, val=val, test=val)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(FinetuneError, match='train.pkl does not exist'):
            _proposal_files(datasets, tmp)
        open(osp.join(tmp, 'train.pkl'), 'w').close()
        _proposal_files(datasets, tmp)  # no val.pkl or test.pkl needed
        want = osp.join(osp.abspath(tmp), 'train.pkl')
        assert train['proposal_file'] == want
        assert val['dataset']['proposal_file'] == want
