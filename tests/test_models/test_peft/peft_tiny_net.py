"""A tiny conv + linear model with the names of a detector's parts."""
import torch
from mmcv.cnn import ConvModule
from torch import nn


class TinyHead(nn.Module):

    def __init__(self):
        super().__init__()
        self.shared_fcs = nn.ModuleList([nn.Linear(8, 16)])
        self.fc_cls = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc_cls(torch.relu(self.shared_fcs[0](x)))


class TinyNet(nn.Module):
    """backbone (ConvModule with BN, a dilated grouped conv), bbox_head."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            ConvModule(3, 8, 3, padding=1, norm_cfg=dict(type='BN')),
            nn.Conv2d(8, 8, 3, stride=2, padding=2, dilation=2, groups=2))
        self.bbox_head = TinyHead()

    def forward(self, x):
        feat = self.backbone(x).mean(dim=(2, 3))
        return self.bbox_head(feat)
