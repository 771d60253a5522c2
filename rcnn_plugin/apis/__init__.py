from .deploy_check import (
                     calibration_feeds,
                     capture_input,
                     dataset_image_paths,
                     dataset_samples,
                     predict_dicts,
                     self_check,
)
from .drawing import class_colour, draw_detections
from .inputs import (
                     IMAGE_EXTS,
                     VIDEO_EXTS,
                     VideoReader,
                     collect_images,
                     image_reader,
                     inference_pipeline,
                     is_video,
                     output_names,
                     read_image,
                     split_reader,
)
from .onnx_predictor import OnnxPredictor, make_predictor
from .predictor import (
                     Predictor,
                     encode_mask,
                     instances_to_dicts,
                     to_coco_results,
)
from .slicing import SlicedPredictor

__all__ = [
    'IMAGE_EXTS', 'VIDEO_EXTS', 'OnnxPredictor', 'Predictor',
    'SlicedPredictor', 'VideoReader', 'calibration_feeds', 'capture_input',
    'dataset_image_paths', 'dataset_samples', 'predict_dicts', 'self_check',
    'class_colour', 'collect_images', 'draw_detections', 'encode_mask',
    'image_reader', 'inference_pipeline', 'instances_to_dicts',
    'is_video', 'make_predictor', 'output_names', 'read_image', 'split_reader',
    'to_coco_results'
]
