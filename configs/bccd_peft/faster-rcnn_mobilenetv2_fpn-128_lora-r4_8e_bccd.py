# LoRA rank 4: the rank-8 config with half the adapter rank (same
# alpha / rank = 2 scaling).
_base_ = './faster-rcnn_mobilenetv2_fpn-128_lora-r8_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(lora=dict(rank=4, alpha=8))
