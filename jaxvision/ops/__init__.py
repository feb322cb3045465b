"""Pure jax.numpy ops: boxes, IoU, NMS, RoI pooling, anchors, box coding, matching, upsampling, losses."""
from jaxvision.ops.boxes import box_area, box_convert, clip_boxes_to_image, small_box_mask
from jaxvision.ops.iou import box_iou
from jaxvision.ops.conv_transpose import conv_transpose
from jaxvision.ops.anchors import anchor_grid, anchor_strides, cell_anchors, ssd_default_boxes, yolo_grid
from jaxvision.ops.coding import BoxCoder
from jaxvision.ops.matching import balanced_sample, hard_negative_mask, match_boxes, ssd_match
from jaxvision.ops.losses import sigmoid_focal_loss, smooth_l1, softmax_cross_entropy
