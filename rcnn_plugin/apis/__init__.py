from .drawing import class_colour, draw_detections
from .inputs import (
                     IMAGE_EXTS,
                     VIDEO_EXTS,
                     VideoReader,
                     collect_images,
                     is_video,
                     read_image,
)
from .predictor import (
                     Predictor,
                     encode_mask,
                     instances_to_dicts,
                     to_coco_results,
)

__all__ = [
    'IMAGE_EXTS', 'VIDEO_EXTS', 'Predictor', 'VideoReader', 'class_colour',
    'collect_images', 'draw_detections', 'encode_mask', 'instances_to_dicts',
    'is_video', 'read_image', 'to_coco_results'
]
