"""Convert a csv dataset to COCO JSON (one file per split).

Usage::

    python tools/dataset_converters/csv2coco.py DATA_ROOT OUT_DIR \
        [--classes A B ...] [--absolute-paths]
"""
import sys

from rcnn_plugin.datasets import convert_main

if __name__ == '__main__':
    sys.exit(convert_main('csv'))
