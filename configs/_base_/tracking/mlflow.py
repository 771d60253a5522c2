# MLflow with a local file store: <work_dir>/<timestamp>/vis_data/mlruns
# (mmengine's default tracking URI when `tracking_uri` is not set).
# mlflow is an optional extra: pip install mlflow. View with:
# mlflow ui --backend-store-uri <that dir>
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='MLflowVisBackend', exp_name='rcnn_plugin'),
]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
