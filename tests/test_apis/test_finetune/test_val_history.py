"""A run's validation history across resumed attempts (finetune.json,
run_ablation)."""
import json
import os

from rcnn_plugin.utils.run_record import val_history


def _scalars(work_dir, stamp, rows):
    folder = work_dir / stamp / 'vis_data'
    os.makedirs(folder)
    (folder / 'scalars.json').write_text(
        ''.join(json.dumps(r) + '\n' for r in rows))


def test_history_spans_the_attempts_of_this_run_only(tmp_path):
    # A resumed run listed only its last attempt's validations (an empty
    # list when cut in its test step); an --overwrite'n run's stay out.
    _scalars(tmp_path, '20260101_000000', [{'pascal_voc/mAP': 0.9,
                                            'step': 1}])
    _scalars(tmp_path, '20260102_000000', [
        {'loss': 1.0, 'step': 3}, {'pascal_voc/mAP': 0.1, 'step': 1},
        {'pascal_voc/mAP': 0.2, 'step': 2}])
    _scalars(tmp_path, '20260102_010000', [{'pascal_voc/mAP': 0.25,
                                            'step': 2},
                                           {'pascal_voc/mAP': 0.3,
                                            'step': 3}])
    history = val_history(str(tmp_path), 'pascal_voc/mAP',
                          since='20260102_000000')
    assert [r['pascal_voc/mAP'] for r in history] == [0.1, 0.25, 0.3]
