"""Write one detector of a teacher-student checkpoint as a plain one.

A mean-teacher or source-free checkpoint holds ``teacher.*`` and
``student.*`` weights; a plain Faster R-CNN config (``tools/test.py`` on
BCCD, ``tools/infer.py``, the deployment tools) finds none of its keys in
it. This writes the chosen branch (the teacher by default, the model the
project's configs predict with) with the prefix removed::

    python projects/DomainAdaptation/tools/extract_detector.py \
        work_dirs/<mean-teacher run>/iter_800.pth teacher.pth
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from rcnn_plugin.utils.checkpoint_io import read_checkpoint  # noqa: E402
from rcnn_plugin.utils.cli import converted_path  # noqa: E402


def extract_detector(src: str, dst: str, branch: str = 'teacher') -> int:
    """Save the ``branch`` weights of ``src`` without their prefix.

    Args:
        src (str): A teacher-student checkpoint (``SemiBaseDetector``).
        dst (str): Where to write the plain detector checkpoint.
        branch (str): ``'teacher'`` or ``'student'``. Defaults to
            ``'teacher'``.

    Returns:
        int: The number of tensors written.

    Raises:
        ValueError: If ``src`` has no ``branch`` weights, naming what it
            holds.
    """
    state_dict, meta = read_checkpoint(src)
    prefix = branch + '.'
    weights = {key[len(prefix):]: value
               for key, value in state_dict.items()
               if key.startswith(prefix)}
    if not weights:
        tops = sorted({key.split('.')[0] for key in state_dict})
        raise ValueError(
            f'{src} holds no {branch}.* weights (its top-level names: '
            f'{tops[:6]}); a mean-teacher checkpoint has teacher.* and '
            'student.*. A plain detector checkpoint needs no extraction.')
    torch.save({'meta': dict(dataset_meta=meta.get('dataset_meta', {}),
                             extracted_from=osp.basename(src),
                             branch=branch),
                'state_dict': weights}, dst)
    return len(weights)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='teacher-student checkpoint')
    parser.add_argument('dst', help='plain detector checkpoint to write')
    parser.add_argument('--branch', choices=('teacher', 'student'),
                        default='teacher')
    args = parser.parse_args(argv)
    converted_path(parser, args.src, args.dst)  # not the source; its folder
    try:
        count = extract_detector(args.src, args.dst, args.branch)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'{args.branch}: {count} tensors written to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
