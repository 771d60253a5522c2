# Weights & Biases in offline mode: no network, no account. The run is
# written to <work_dir>/<timestamp>/vis_data/wandb/offline-run-*/ (mmengine
# sets wandb's `dir` to the backend's save dir). Upload later with
# `wandb sync <that dir>`. Scalars, the config and the metric figures are
# logged.
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(
        type='WandbVisBackend',
        init_kwargs=dict(mode='offline', project='rcnn_plugin')),
]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
