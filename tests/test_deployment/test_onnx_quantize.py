"""int8 static quantisation of a tiny export runs."""
import pytest

from rcnn_plugin.apis import OnnxPredictor, calibration_feeds
from rcnn_plugin.deployment import read_meta
from rcnn_plugin.deployment.quantize import quantize_graphs

pytest.importorskip('onnxruntime', reason='needs the deploy extra: '
                    "pip install -e '.[deploy]'")
onnx = pytest.importorskip('onnx')


def test_quantised_model_runs(tmp_path, deploy_config, static_onnx,
                              cell_images):
    feeds = calibration_feeds(deploy_config, static_onnx, cell_images)
    assert len(feeds['features']) == 2 and len(feeds['bbox']) == 2
    out = str(tmp_path / 'tiny.int8.onnx')
    paths = quantize_graphs(static_onnx, out, feeds)
    for path in paths.values():
        ops = {n.op_type for n in onnx.load(path).graph.node}
        assert 'QuantizeLinear' in ops and 'DequantizeLinear' in ops
        assert read_meta(path)['classes'] == read_meta(static_onnx)[
            'classes']
    preds = OnnxPredictor(deploy_config, out).predict(cell_images)
    assert len(preds) == 2
    assert preds[0].bboxes.shape[1] == 4
    assert len(preds[0].scores) == len(preds[0].labels)


def test_the_tool_says_what_it_left_out(tmp_path, deploy_config, static_onnx,
                                        synthetic_cells, capsys):
    import os.path as osp
    import sys

    from conftest import REPO
    sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
    import quantize_onnx
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    images = osp.join(synthetic_cells, 'val')
    quantize_onnx.main([deploy_config, '--onnx', static_onnx, '--out',
                        str(tmp_path / 'q.onnx'), '--num-calib', '3',
                        '--calib-images', str(tmp_path / 'broken.png'),
                        images])
    out = capsys.readouterr().out
    assert 'calibration images given; the first 3 are used' in out
    assert 'left out 1 calibration image(s) that do not decode' in out
    assert '[quantize] 2 calibration images' in out


def test_the_tool_errors_are_sentences(tmp_path, deploy_config, static_onnx,
                                       synthetic_cells):
    import os.path as osp
    import sys

    from conftest import REPO
    sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
    import quantize_onnx
    images = osp.join(synthetic_cells, 'val')
    out = str(tmp_path / 'q.onnx')
    with pytest.raises(SystemExit, match=r'quantize_onnx.py: error: '
                       r"--graphs \['mask'\]: the export has"):
        quantize_onnx.main([deploy_config, '--onnx', static_onnx, '--out',
                            out, '--num-calib', '1', '--calib-images',
                            images, '--graphs', 'mask'])
    not_onnx = tmp_path / 'model.pth'
    not_onnx.write_bytes(b'not a graph')
    with pytest.raises(SystemExit, match='error: .*model.pth is not an '
                       'ONNX file'):
        quantize_onnx.main([deploy_config, '--onnx', str(not_onnx),
                            '--out', out, '--num-calib', '1',
                            '--calib-images', images])
    assert not osp.exists(out)


def test_the_tool_refuses_a_missing_export_and_its_own_input(
        tmp_path, deploy_config, static_onnx, synthetic_cells, capsys):
    import os.path as osp
    import sys

    from conftest import REPO
    sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
    import quantize_onnx
    images = osp.join(synthetic_cells, 'val')
    with pytest.raises(SystemExit):
        quantize_onnx.main([deploy_config, '--onnx', str(tmp_path / 'x'),
                            '--out', str(tmp_path / 'q.onnx'),
                            '--calib-images', images])
    assert 'no such file' in capsys.readouterr().err
    # --out equal to --onnx overwrote the fp32 graphs with int8.
    with pytest.raises(SystemExit):
        quantize_onnx.main([deploy_config, '--onnx', static_onnx,
                            '--out', static_onnx, '--calib-images', images])
    assert 'would overwrite it' in capsys.readouterr().err
    with pytest.raises(ValueError, match='would overwrite the fp32'):
        quantize_graphs(static_onnx, static_onnx, {})


def test_the_tool_makes_the_out_folder_first(tmp_path, deploy_config,
                                             static_onnx, synthetic_cells,
                                             monkeypatch):
    import os.path as osp
    import sys

    from conftest import REPO
    sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
    import quantize_onnx
    folder = tmp_path / 'work_dirs' / 'deploy'
    calibrate = quantize_onnx.calibration_feeds

    def calibration_feeds(*args):
        assert folder.is_dir()  # made before the slow calibration
        return calibrate(*args)
    monkeypatch.setattr(quantize_onnx, 'calibration_feeds',
                        calibration_feeds)
    quantize_onnx.main([deploy_config, '--onnx', static_onnx, '--out',
                        str(folder / 'demo.int8.onnx'), '--num-calib', '1',
                        '--calib-images', osp.join(synthetic_cells, 'val')])
    assert (folder / 'demo.int8.onnx').is_file()
    assert (folder / 'demo.int8.bbox.onnx').is_file()


def test_the_tool_says_when_the_train_split_is_missing(tmp_path):
    # Without --calib-images a missing train split was a traceback (the
    # FileNotFoundError of pycocotools), not the tool's error sentence.
    import os.path as osp
    import sys

    from conftest import REPO
    sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
    import quantize_onnx
    base = osp.join(REPO, 'configs', 'demo',
                    'faster-rcnn_mobilenetv2_fpn-128_4e_synthetic-cells.py')
    config = tmp_path / 'no_data.py'
    config.write_text(f"_base_ = '{base}'\ntrain_dataloader = dict(dataset="
                      f"dict(data_root='{tmp_path}/nowhere/'))\n")
    fp32 = tmp_path / 'x.onnx'
    fp32.write_bytes(b'not read before the images')
    argv = [str(config), '--onnx', str(fp32), '--out',
            str(tmp_path / 'q.onnx')]
    with pytest.raises(SystemExit, match=r'quantize_onnx.py: error: the '
                       r'train split of .*no_data\.py cannot be read \(.*'
                       r'nowhere/annotations/train\.json.*\); fix it or '
                       'give --calib-images') as err:
        quantize_onnx.main(argv)
    assert isinstance(err.value.code, str)  # exit status 1, as the others
    config.write_text(f"_base_ = '{base}'\ntrain_dataloader = None\n")
    with pytest.raises(SystemExit, match=r'error: .*no_data\.py has no '
                       'train_dataloader to calibrate on; give '
                       '--calib-images'):
        quantize_onnx.main(argv)
