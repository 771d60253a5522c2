"""Precomputed proposals (Fast R-CNN): file keys and a strict loader.

mmdet's ``DumpProposals`` writes a pickle ``{key: proposals}`` where ``key``
is ``<parent folder>/<file name>`` of the image (for example
``JPEGImages/BloodImage_00001.jpg``) and ``proposals`` holds ``bboxes``
(R, 4) as ``x1, y1, x2, y2`` in original image pixels and ``scores`` (R,),
best first. ``BaseDetDataset.load_proposals`` reads that file but checks it
only with a bare ``assert`` on the count and a ``KeyError`` on the first
missing key. :class:`StrictProposalsMixin` replaces it with a check that
names the file and the first mismatch.
"""
import os.path as osp
from typing import Dict, List, Mapping

import numpy as np
from mmengine.fileio import load
from mmengine.utils import is_abs


class ProposalFileError(ValueError):
    """A proposal file does not match its dataset."""


def proposal_key(img_path: str) -> str:
    """The key under which mmdet stores an image's proposals.

    Args:
        img_path (str): Path of the image.

    Returns:
        str: ``<parent folder>/<file name>``, as mmdet's ``DumpProposals``
        and ``BaseDetDataset.load_proposals`` build it.
    """
    folder, name = osp.split(img_path)
    return osp.join(osp.basename(folder), name)


def _check_entry(key: str, entry: object, proposal_file: str) -> None:
    """Raise if one entry is not (R, 4) boxes with optional (R,) scores."""
    try:
        bboxes = np.asarray(entry['bboxes'])
    except (KeyError, TypeError, IndexError) as err:
        raise ProposalFileError(
            f'{proposal_file}: proposals of {key!r} have no "bboxes" '
            f'({type(entry).__name__})') from err
    if bboxes.ndim != 2 or bboxes.shape[1] != 4:
        raise ProposalFileError(
            f'{proposal_file}: proposals of {key!r} must be (R, 4) boxes, '
            f'got shape {tuple(bboxes.shape)}')
    if 'scores' in entry and len(entry['scores']) != len(bboxes):
        raise ProposalFileError(
            f'{proposal_file}: proposals of {key!r} have {len(bboxes)} '
            f'boxes but {len(entry["scores"])} scores')


def match_proposals(data_list: List[dict], proposals: Mapping,
                    proposal_file: str) -> None:
    """Attach ``proposals`` to each ``data_info``, or raise on a mismatch.

    The file must hold exactly one entry per image of ``data_list``: the
    error names the first image without proposals (in dataset order) or,
    when every image has some, the first key that matches no image.

    Args:
        data_list (list[dict]): The dataset's data infos, with ``img_path``.
        proposals (Mapping): ``{proposal_key(img_path): proposals}``.
        proposal_file (str): Path of the file, for the error messages.

    Raises:
        ProposalFileError: If the keys or an entry do not match.
    """
    if not isinstance(proposals, Mapping):
        raise ProposalFileError(
            f'{proposal_file}: expected a dict of image key -> proposals '
            f'(as DumpProposals writes), got {type(proposals).__name__}')
    keys = [proposal_key(info['img_path']) for info in data_list]
    for info, key in zip(data_list, keys):
        if key not in proposals:
            raise ProposalFileError(
                f'{proposal_file} has {len(proposals)} entries for '
                f'{len(data_list)} images; first image without proposals: '
                f'{info["img_path"]} (key {key!r})')
    seen = set()
    for info, key in zip(data_list, keys):
        if key in seen:
            raise ProposalFileError(
                f'{proposal_file}: two images share the proposal key '
                f'{key!r} (second: {info["img_path"]}); proposal files '
                'key images by <parent folder>/<file name>')
        seen.add(key)
    extra = next((key for key in proposals if key not in seen), None)
    if extra is not None:
        raise ProposalFileError(
            f'{proposal_file} has {len(proposals)} entries for '
            f'{len(data_list)} images; first key that matches no image: '
            f'{extra!r}')
    for info, key in zip(data_list, keys):
        _check_entry(key, proposals[key], proposal_file)
        info['proposals'] = proposals[key]


class StrictProposalsMixin:
    """Dataset mixin: load ``proposal_file`` with :func:`match_proposals`.

    Put it first in the bases of a ``BaseDetDataset`` subclass. A relative
    ``proposal_file`` is joined to ``data_root``, as in mmdet.
    """

    def load_proposals(self) -> None:
        """Load ``self.proposal_file`` into ``self.data_list``.

        Raises:
            ProposalFileError: If the file does not match the dataset.
        """
        if not is_abs(self.proposal_file) and self.data_root:
            self.proposal_file = osp.join(self.data_root, self.proposal_file)
        if self.backend_args is None and not osp.isfile(
                self.proposal_file):
            raise FileNotFoundError(
                f'proposal file not found: {self.proposal_file} (write it '
                'with tools/generate_proposals.py)')
        proposals: Dict = load(
            self.proposal_file, backend_args=self.backend_args)
        match_proposals(self.data_list, proposals, self.proposal_file)
