"""Fine-tune Faster / Mask / Fast R-CNN on a labelled folder, one command.

Example::

    python tools/finetune.py ../shared/datasets/bccd
    python tools/finetune.py ../shared/datasets/balloon --model mask-rcnn

Also installed as the console command ``rcnn-finetune``. See
docs/finetune.md.
"""
import sys

from rcnn_plugin.apis.finetune import main

if __name__ == '__main__':
    sys.exit(main())
