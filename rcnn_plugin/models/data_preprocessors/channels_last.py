"""A data preprocessor that hands the model channels-last images."""
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS

__all__ = ['ChannelsLastDetDataPreprocessor']


@MODELS.register_module()
class ChannelsLastDetDataPreprocessor(DetDataPreprocessor):
    """:class:`DetDataPreprocessor` whose batch is ``channels_last`` (NHWC).

    A convolution whose input is channels-last returns a channels-last
    output, so the whole backbone and neck then run in NHWC, the layout
    oneDNN (CPU) and cuDNN tensor cores prefer. Values are unchanged; only
    the strides differ. Select it with one key (the mean, std and padding
    of the base config are kept)::

        model = dict(data_preprocessor=dict(
            type='ChannelsLastDetDataPreprocessor'))
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise, pad and batch as mmdet, then convert to NHWC.

        Args:
            data (dict): ``inputs`` and ``data_samples`` from the loader.
            training (bool): Whether batch augmentations apply.
                Defaults to False.

        Returns:
            dict: ``inputs`` (N, 3, H, W) in channels-last memory format and
            ``data_samples``.
        """
        data = super().forward(data, training)
        data['inputs'] = data['inputs'].contiguous(
            memory_format=torch.channels_last)
        return data
