"""Transform wrappers for precomputed proposals (Fast R-CNN)."""
import numpy as np
from mmdet.datasets.transforms import ProposalBroadcaster
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes


@TRANSFORMS.register_module()
class BoxProposalBroadcaster(ProposalBroadcaster):
    """``ProposalBroadcaster`` whose proposals survive Resize and RandomFlip.

    mmdet 3.3's ``LoadProposals`` leaves ``proposals`` as an (R, 4) numpy
    array and ``ProposalBroadcaster`` passes it to the wrapped transforms as
    ``gt_bboxes``; ``Resize`` and ``RandomFlip`` call ``gt_bboxes.rescale_``
    and ``flip_``, which only box objects have, so mmdet's own Fast R-CNN
    pipeline stops with an ``AttributeError``. This subclass hands the
    transforms :class:`HorizontalBoxes` and returns the proposals as the
    float32 numpy array ``PackDetInputs`` expects.

    Required Keys:

    - proposals (np.ndarray): (R, 4) ``x1, y1, x2, y2`` in pixels.

    Modified Keys:

    - proposals: transformed like the image (resized, flipped).

    Args:
        transforms (list[dict | callable]): The transforms to apply to the
            image and, with the same random parameters, to the proposals.
            Defaults to [].
    """

    def _process_input(self, data: dict) -> list:
        """Pair the data with a copy whose ``gt_bboxes`` are the proposals.

        Args:
            data (dict): The result dict, with ``proposals``.

        Returns:
            list[dict]: ``[data, copy]`` for the wrapped transforms.
        """
        data, proposal_data = super()._process_input(data)
        boxes = proposal_data['gt_bboxes']
        if not isinstance(boxes, BaseBoxes):
            boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
            proposal_data['gt_bboxes'] = HorizontalBoxes(boxes)
        return [data, proposal_data]

    def _process_output(self, output_scatters: list) -> dict:
        """Take the image results and the transformed proposals.

        Args:
            output_scatters (list[dict]): The two transformed dicts.

        Returns:
            dict: The result dict, ``proposals`` as an (R, 4) float32 array.
        """
        outputs = super()._process_output(output_scatters)
        boxes = outputs['proposals']
        if isinstance(boxes, BaseBoxes):
            outputs['proposals'] = boxes.numpy().astype(np.float32)
        return outputs
