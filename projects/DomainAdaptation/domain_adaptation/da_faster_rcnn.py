"""DA Faster R-CNN (Chen et al., "Domain Adaptive Faster R-CNN for Object
Detection in the Wild", CVPR 2018) on mmdet's Faster R-CNN.

Shapes: N images per branch, C FPN channels, R RoIs. Training takes the
two branches of mmdet's ``MultiBranchDataPreprocessor``: labelled source
images (``source_branch``) give the detection losses and domain label 0;
unlabelled target images (``target_branch``) give domain label 1 only.
The target data samples are used for their image metadata (shape,
scale), never for ``gt_instances``.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from .domain_classifiers import check_weight, consistency_loss, neck_channels

__all__ = ['DAFasterRCNN']


@MODELS.register_module()
class DAFasterRCNN(TwoStageDetector):
    """Faster R-CNN with image- and instance-level domain classifiers.

    Given a plain batch (not a dict of branches) ``loss`` is the ordinary
    Faster R-CNN loss, so the model also trains source-only.

    Args:
        backbone (ConfigType): Backbone config.
        rpn_head (ConfigType): RPN head config.
        roi_head (ConfigType): RoI head config.
        train_cfg (ConfigType): Training config of the heads.
        test_cfg (ConfigType): Test config of the heads.
        neck (OptConfigType): Neck config. Defaults to None.
        img_da_head (OptConfigType): Image-level classifier
            (None: ``ImageDomainClassifier``); ``in_channels`` defaults to
            the neck's ``out_channels``. Defaults to None.
        ins_da_head (OptConfigType): Instance-level classifier (None:
            ``InstanceDomainClassifier``); ``in_channels`` defaults to the
            box head's ``fc_out_channels`` (``ins_feat='box_head'``) or
            the RoI extractor's ``out_channels`` (``'roi'``).
            Defaults to None.
        da_weights (dict, optional): Weights of ``img``, ``ins`` and ``cst``
            (consistency); missing keys are 1.0, 1.0 and 0.1.
            Defaults to None.
        num_rois (int): Top-scoring RPN proposals per image fed to the
            instance classifier. Defaults to 64.
        ins_feat (str): What the instance classifier sees: ``'box_head'``,
            the box head's shared conv / FC output on each RoI (the paper
            and its reference code, so the FC layers are aligned too), or
            ``'roi'``, the RoIAlign maps averaged over the grid (the
            variant measured before session 21). Defaults to 'box_head'.
        source_branch (str): Branch of the labelled source batch.
            Defaults to 'sup'.
        target_branch (str): Branch of the unlabelled target batch.
            Defaults to 'unsup'.
        data_preprocessor (OptConfigType): Data preprocessor config.
            Defaults to None.
        init_cfg (OptMultiConfig): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 neck: OptConfigType = None,
                 img_da_head: OptConfigType = None,
                 ins_da_head: OptConfigType = None,
                 da_weights: Optional[dict] = None,
                 num_rois: int = 64,
                 ins_feat: str = 'box_head',
                 source_branch: str = 'sup',
                 target_branch: str = 'unsup',
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone, neck=neck, rpn_head=rpn_head,
            roi_head=roi_head, train_cfg=train_cfg, test_cfg=test_cfg,
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        da_weights = dict(da_weights or {})
        unknown = set(da_weights) - {'img', 'ins', 'cst'}
        if unknown:
            raise ValueError(f'da_weights has unknown keys {sorted(unknown)}'
                             "; the keys are 'img', 'ins', 'cst'")
        if num_rois < 1:
            raise ValueError(f'num_rois must be positive, got {num_rois}')
        img_cfg = dict(img_da_head or dict(type='ImageDomainClassifier'))
        if 'in_channels' not in img_cfg:
            img_cfg['in_channels'] = neck_channels(neck, 'img_da_head')
        if ins_feat not in ('box_head', 'roi'):
            raise ValueError("ins_feat must be 'box_head' or 'roi', got "
                             f'{ins_feat!r}')
        self.ins_feat = ins_feat
        ins_cfg = dict(ins_da_head
                       or dict(type='InstanceDomainClassifier'))
        if ins_feat == 'roi':
            ins_cfg.setdefault(
                'in_channels',
                roi_head['bbox_roi_extractor']['out_channels'])
        elif not getattr(self.roi_head.bbox_head, 'num_shared_fcs', 0):
            raise ValueError(
                "ins_feat='box_head' needs a box head with shared FC "
                'layers (ConvFCBBoxHead, e.g. Shared2FCBBoxHead), got '
                f'{type(self.roi_head.bbox_head).__name__}; use '
                "ins_feat='roi'")
        else:
            ins_cfg.setdefault('in_channels',
                               self.roi_head.bbox_head.fc_out_channels)
        self.img_da_head = MODELS.build(img_cfg)
        self.ins_da_head = MODELS.build(ins_cfg)
        self.da_weights = {
            key: check_weight(f'da_weights.{key}', value)
            for key, value in dict(dict(img=1.0, ins=1.0, cst=0.1),
                                   **da_weights).items()}
        self.num_rois = num_rois
        self.source_branch = source_branch
        self.target_branch = target_branch
        self._feats: Tuple[Tensor, ...] = ()

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone and neck features, kept in training for the domain
        losses.

        Args:
            batch_inputs (Tensor): (N, 3, H, W) images.

        Returns:
            tuple[Tensor]: Multi-level features (N, C, H_l, W_l).
        """
        feats = super().extract_feat(batch_inputs)
        if self.training:  # read by the source domain losses
            self._feats = feats
        return feats

    def loss(self, batch_inputs: Union[Tensor, Dict[str, Tensor]],
             batch_data_samples: Union[SampleList, Dict[str, SampleList]]
             ) -> dict:
        """Detection losses on the source, domain losses on both domains.

        Args:
            batch_inputs (Tensor | dict[str, Tensor]): One batch, or the
                source and target branches of ``MultiBranchDataPreprocessor``.
            batch_data_samples (SampleList | dict[str, SampleList]): The
                matching data samples; only the source ones carry boxes.

        Returns:
            dict: Faster R-CNN losses plus ``loss_da_img``,
            ``loss_da_ins`` and ``loss_da_cst`` (source and target summed).
        """
        if not isinstance(batch_inputs, dict):
            return super().loss(batch_inputs, batch_data_samples)
        for branch in (self.source_branch, self.target_branch):
            if branch not in batch_inputs:
                raise KeyError(f'DAFasterRCNN needs the branches '
                               f'{self.source_branch!r} and '
                               f'{self.target_branch!r}, got '
                               f'{sorted(batch_inputs)}')
        losses = super().loss(batch_inputs[self.source_branch],
                              batch_data_samples[self.source_branch])
        src = self._domain_losses(self._feats,
                                  batch_data_samples[self.source_branch], 0)
        tgt_feats = self.extract_feat(batch_inputs[self.target_branch])
        tgt = self._domain_losses(tgt_feats,
                                  batch_data_samples[self.target_branch], 1)
        for key in src:
            losses[key] = src[key] + tgt[key]
        self._feats = ()
        return losses

    def _proposals(self, feats: Tuple[Tensor, ...],
                   data_samples: SampleList) -> List[Tensor]:
        """Top ``num_rois`` RPN boxes per image, (R_i, 4), no gradient.

        Reads only each sample's metainfo (image shape), never its
        ``gt_instances``.
        """
        metas = [s.metainfo for s in data_samples]
        with torch.no_grad():
            outs = self.rpn_head(feats)
            results = self.rpn_head.predict_by_feat(
                *outs, batch_img_metas=metas, cfg=self.test_cfg.rpn,
                rescale=False)
        return [r.bboxes[:self.num_rois].detach() for r in results]

    def _instance_feats(self, roi_feats: Tensor) -> Tensor:
        """The box head's shared convs and FCs on RoI maps: (R, C_fc)."""
        head = self.roi_head.bbox_head
        x = roi_feats
        for conv in head.shared_convs:
            x = conv(x)
        if head.with_avg_pool:
            x = head.avg_pool(x)
        x = x.flatten(1)
        for fc in head.shared_fcs:
            x = head.relu(fc(x))
        return x

    def _domain_losses(self, feats: Tuple[Tensor, ...],
                       data_samples: SampleList, domain: int) -> dict:
        """Image-level, instance-level and consistency losses of a batch.

        The consistency term runs the classifiers again without the
        reversal (the reference code's separate ``+weight`` layers): with
        it, the term would push the features away from consistency.
        """
        img_logits = self.img_da_head(feats)
        rois = bbox2roi(self._proposals(feats, data_samples))
        extractor = self.roi_head.bbox_roi_extractor
        ins_in = extractor(feats[:extractor.num_inputs], rois)
        if self.ins_feat == 'box_head':
            ins_in = self._instance_feats(ins_in)
        ins_logits = self.ins_da_head(ins_in)
        w = self.da_weights
        img_probs = self.img_da_head.image_probs(
            self.img_da_head(feats, reverse=False))
        ins_probs = self.ins_da_head(ins_in, reverse=False).sigmoid()
        return dict(
            loss_da_img=w['img'] * self.img_da_head.loss(img_logits, domain),
            loss_da_ins=w['ins'] * self.ins_da_head.loss(ins_logits, domain),
            loss_da_cst=w['cst'] * consistency_loss(img_probs, ins_probs,
                                                    rois[:, 0]))
