"""Ground truth of a dataset's ``get_data_info`` entry, packed as mmdet's
metrics take it in ``process``."""
import numpy as np
import torch


def gt_instances(info: dict, ignored: bool) -> dict:
    """Boxes and labels of a ``get_data_info`` entry, as mmdet's metrics
    take ``gt_instances`` (``ignored=False``) or ``ignored_instances``
    (``ignored=True``: the instances with ``ignore_flag``)."""
    kept = [i for i in info.get('instances', [])
            if bool(i.get('ignore_flag', 0)) == ignored]
    boxes = np.array([i['bbox'] for i in kept], np.float32).reshape(-1, 4)
    labels = np.array([i.get('bbox_label', -1) for i in kept], np.int64)
    return dict(bboxes=torch.from_numpy(boxes),
                labels=torch.from_numpy(labels))
