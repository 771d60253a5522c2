"""RPN head with torchvision's proposal score threshold."""
from typing import Optional

from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData


@MODELS.register_module()
class TorchvisionRPNHead(RPNHead):
    """``RPNHead`` that drops proposals scoring below ``cfg.score_thr``
    before NMS, as torchvision's ``RegionProposalNetwork(score_thresh=...)``
    does (``fasterrcnn_mobilenet_v3_large_fpn`` uses 0.05). Without
    ``score_thr`` in the test/train config it is mmdet's ``RPNHead``.

    Args: as :class:`mmdet.models.dense_heads.RPNHead`.
    """

    def _bbox_post_process(self,
                           results: InstanceData,
                           cfg: ConfigDict,
                           rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None) -> InstanceData:
        score_thr = cfg.get('score_thr', 0.0)
        if score_thr > 0:
            results = results[results.scores >= score_thr]
        return super()._bbox_post_process(results, cfg, rescale, with_nms,
                                          img_meta)
