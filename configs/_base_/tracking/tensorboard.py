# TensorBoard: scalars (losses, lr, every metric key) and the metric
# figures go to <work_dir>/<timestamp>/vis_data/events.out.tfevents.*.
# View with: tensorboard --logdir work_dirs/
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
