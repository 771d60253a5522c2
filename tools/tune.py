"""Search a config's hyperparameters with Optuna, resumably.

Example::

    python tools/tune.py \\
        configs/bccd/faster-rcnn_mobilenetv2_fpn-128_8e_bccd.py \\
        --space configs/_base_/tune/space_bccd.py --metric pascal_voc/mAP \\
        --trials 12 --epochs 4 --timeout 7200

Writes WORK_DIR/study.db (run the same command again to resume),
trials.csv, plots/ and <config>_tuned.py, a config inheriting the base with
the best trial's values. See docs/tune.md.
"""
import sys

from rcnn_plugin.apis.tune import main

if __name__ == '__main__':
    sys.exit(main())
