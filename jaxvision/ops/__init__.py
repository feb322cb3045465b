"""Pure jax.numpy ops: boxes, IoU, NMS, RoI pooling, anchors, box coding, matching, upsampling, convolutions,
losses (detection terms and the GAN objectives), SSD's photometric distortion of a batch."""
from jaxvision.ops.anchors import anchor_grid, anchor_strides, cell_anchors, ssd_default_boxes, yolo_grid
from jaxvision.ops.blocked_conv import space_to_depth_conv, thin_output_conv
from jaxvision.ops.boxes import box_area, box_convert, clip_boxes_to_image, small_box_mask
from jaxvision.ops.coding import BoxCoder
from jaxvision.ops.conv import conv2d
from jaxvision.ops.gan_losses import discriminator_loss, generator_loss
from jaxvision.ops.im2col import im2col_conv, small_map_conv
from jaxvision.ops.iou import (
    box_iou,
    complete_box_iou,
    complete_box_iou_loss,
    distance_box_iou,
    distance_box_iou_loss,
    generalized_box_iou,
    generalized_box_iou_loss,
)
from jaxvision.ops.losses import gaussian_kl, sigmoid_focal_loss, smooth_l1, softmax_cross_entropy
from jaxvision.ops.matching import balanced_sample, hard_negative_mask, match_boxes, ssd_match
from jaxvision.ops.photometric import distort_colors, hsv_to_rgb, photometric_distort, rgb_to_hsv
from jaxvision.ops.roi import roi_align, roi_pool
from jaxvision.ops.selection import take_valid
from jaxvision.ops.suppression import batched_nms, nms, soft_nms
from jaxvision.ops.transposed_conv import conv_transpose
from jaxvision.ops.upsample import bed_of_nails_unpool, max_pool_with_argmax, max_unpool, nearest_unpool
from jaxvision.ops.warp import crop_and_resize
