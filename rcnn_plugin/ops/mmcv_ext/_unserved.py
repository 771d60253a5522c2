"""The ``mmcv._ext`` names that are not served, and their stand-ins.

mmcv's wrappers check at import time that every function they use exists
(``hasattr``); calling one of these raises ``NotImplementedError`` that
names the op and tells how to get mmcv's compiled ops.
"""
from typing import Callable, NoReturn

from ._common import INSTALL_HINT

__all__ = ['UNSERVED', 'unserved_op']

# Every name mmcv 2.1.0's wrappers load from ``mmcv._ext`` (grep
# ``load_ext(`` in mmcv/ops), less the served ones.
UNSERVED = frozenset('''
active_rotated_filter_backward active_rotated_filter_forward
assign_score_withk_backward assign_score_withk_forward ball_query_forward
bbox_overlaps bezier_align_backward bezier_align_forward bias_act
border_align_backward border_align_forward box_iou_quadri box_iou_rotated
carafe_backward carafe_forward carafe_naive_backward carafe_naive_forward
chamfer_distance_backward chamfer_distance_forward contour_expand
convex_giou convex_iou correlation_backward correlation_forward
deform_roi_pool_backward deform_roi_pool_forward
diff_iou_rotated_sort_vertices_forward dynamic_point_to_voxel_backward
dynamic_point_to_voxel_forward dynamic_voxelize_forward filtered_lrelu
filtered_lrelu_act_ furthest_point_sampling_forward
furthest_point_sampling_with_dist_forward fused_bias_leakyrelu
fused_indice_conv_forward gather_points_backward gather_points_forward
get_indice_pairs_2d_backward get_indice_pairs_2d_forward
get_indice_pairs_3d_backward get_indice_pairs_3d_forward
get_indice_pairs_4d_forward group_points_backward group_points_forward
hard_voxelize_forward indice_conv_backward indice_conv_forward
indice_maxpool_backward indice_maxpool_forward
iou3d_boxes_overlap_bev_forward iou3d_nms3d_forward
iou3d_nms3d_normal_forward knn_forward masked_col2im_forward
masked_im2col_forward min_area_polygons ms_deform_attn_backward
ms_deform_attn_forward nms_quadri nms_rotated pixel_group
points_in_boxes_all_forward points_in_boxes_cpu_forward
points_in_boxes_part_forward points_in_polygons_forward prroi_pool_backward
prroi_pool_coor_backward prroi_pool_forward psamask_backward
psamask_forward riroi_align_rotated_backward riroi_align_rotated_forward
roi_align_rotated_backward roi_align_rotated_forward roiaware_pool3d_backward
roiaware_pool3d_forward roipoint_pool3d_forward
rotated_feature_align_backward rotated_feature_align_forward
softmax_focal_loss_backward softmax_focal_loss_forward
stack_ball_query_forward stack_group_points_backward
stack_group_points_forward sync_bn_backward_data sync_bn_backward_param
sync_bn_forward_mean sync_bn_forward_output sync_bn_forward_var
three_interpolate_backward three_interpolate_forward three_nn_forward
tin_shift_backward tin_shift_forward upfirdn2d
'''.split())


def unserved_op(name: str) -> Callable[..., NoReturn]:
    """A stand-in for the unserved op ``name`` that raises when called.

    Args:
        name (str): The ``mmcv._ext`` function name.

    Returns:
        Callable: A function that raises ``NotImplementedError``.
    """

    def op(*args, **kwargs) -> NoReturn:
        raise NotImplementedError(
            f'mmcv op `{name}` is not served by rcnn_plugin\'s '
            'torchvision-backed ops (this mmcv has no compiled mmcv._ext, '
            f'e.g. mmcv-lite). {INSTALL_HINT}')

    op.__name__ = op.__qualname__ = name
    return op
