# IA3 through the optional HF peft backend (pip install -e '.[peft]'): the
# LoRA r4 config with peft's IA3 in place of our LoRA, on the same layers
# (the backbone's 1x1 convs after the frozen stem and the box head's two
# shared FCs, whose random base weights stay frozen); FPN, RPN head,
# fc_cls and fc_reg train as there. IA3 learns one scale per output
# channel of each layer (no feedforward_modules: every scale multiplies
# the layer's output), starting at 1, so training starts from the base
# model exactly; it is the smallest adapter of the table.
_base_ = './faster-rcnn_mobilenetv2_fpn-128_lora-r4_8e_bccd.py'

custom_imports = dict(imports=['rcnn_plugin'], allow_failed_imports=False)

model = dict(
    lora=None,
    backend='peft',
    peft_cfg=dict(
        type='IA3',
        target_modules=r'backbone\.(layer[2-7]\.\d+\.(expand|linear)_conv'
        r'|conv2)\.conv|roi_head\.bbox_head\.shared_fcs\.\d+'))
