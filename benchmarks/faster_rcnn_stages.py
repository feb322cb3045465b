"""Where Faster R-CNN predict spends its time: each stage of ours vs torchvision's modules, one by one.

The workload of ``benchmarks/detectors.py --only faster_rcnn`` (random ResNet-50 C5 Faster R-CNN, the same random
batch for both). Each of our stages is a separately jitted program fed the previous stage's outputs; torchvision's
stages are its own submodules called in the order ``FasterRCNN.forward`` calls them (eval mode, inference mode):

  - trunk: ours ``ResNet50`` on the normalized images vs ``model.backbone(images.tensors)`` (its ``transform``,
    resize and normalization, is its own row);
  - RPN head: ours ``RPNHead`` (on the CPU its 3x3 conv is ``ops.small_map_conv``) vs ``model.rpn.head``;
  - proposals: ours ``faster_rcnn.propose`` (top-k, decode, clip, NMS 0.7) vs ``model.rpn`` minus its head;
  - RoI head: ours ``roi_heads.classify_valid_rois`` (RoI Align 7x7 + TwoMLPHead on the valid proposals) vs
    ``box_roi_pool`` + ``box_head`` + ``box_predictor``;
  - postprocess: ours ``decode_head`` + per-class NMS (``batched_postprocess``) vs
    ``roi_heads.postprocess_detections``;
  - whole predict: ours ``faster_rcnn.predict_fn`` (one program) vs ``model(images)``, as in ``detectors.py``.

Our composed stages are checked against the one-program ``faster_rcnn.predict_fn`` before anything is timed (same
detections up to float32 rounding: the stages are the predict path, cut apart). Medians of ``--repeats`` calls
after a warm-up.

Run: ``PYTHONPATH=. python benchmarks/faster_rcnn_stages.py [--frcnn-batch 1] [--frcnn-size 320] [--repeats 7]``
(needs torch + torchvision; CPU or ``--device gpu``).
"""
from __future__ import annotations

import argparse
import math

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.detectors import faster_rcnn_images, torchvision_faster_rcnn
from benchmarks.harness import Row, add_device_argument, median_time, print_table, select_device
from jaxvision.models.backbones.resnet import ResNet50
from jaxvision.models.detection import faster_rcnn, roi_heads
from jaxvision.models.detection.common import batched_postprocess, normalize
from jaxvision.ops import anchor_grid, anchor_strides

STAGES = ("trunk", "RPN head", "proposals", "RoI head", "postprocess")


def our_stages(model: faster_rcnn.FasterRCNN, variables, image_hw, feature_hw):
    """Our predict path as jitted stages ``{name: fn}`` (names: ``STAGES``), each taking the previous stage's
    outputs; the model must use ``ResNet50`` as its backbone."""
    params, stats = variables["params"], variables.get("batch_stats", {})
    sizes, ratios = tuple(map(float, model.anchor_sizes)), tuple(map(float, model.aspect_ratios))
    anchors = anchor_grid([feature_hw], anchor_strides(image_hw, [feature_hw]), (sizes,), (ratios,))
    trunk = ResNet50(dtype=model.dtype)
    rpn = faster_rcnn.RPNHead(len(sizes) * len(ratios), model.dtype)
    head = roi_heads.RoIBoxHead(model.num_classes, model.representation_size, model.dtype)
    pool = dict(output_size=model.pool_size, sampling_ratio=model.sampling_ratio,
                spatial_scale=2.0 ** round(math.log2(feature_hw[1] / image_hw[1])))

    def features(images):
        x = normalize(images, model.pixel_mean, model.pixel_std)
        return trunk.apply({"params": params["backbone"], "batch_stats": stats["backbone"]}, x, False)[-1]

    def proposals(objectness, deltas):
        return jax.vmap(lambda o, d: faster_rcnn.propose(
            o, d, anchors, image_hw, model.rpn_pre_nms_top_n_test, model.rpn_post_nms_top_n_test,
            model.rpn_nms_thresh, model.rpn_min_size))(objectness, deltas)

    def classify(feats, rois, valid):
        return roi_heads.classify_valid_rois(lambda p: head.apply({"params": params["box_head"]}, p), feats, rois,
                                             valid, strategy=model.head_strategy, **pool)

    def postprocess(logits, box_regression, rois, valid):
        boxes, scores = roi_heads.decode_head(logits, box_regression, rois, valid, image_hw)
        return batched_postprocess(boxes, scores, score_threshold=0.05, iou_threshold=0.5, max_detections=100,
                                   topk_candidates=1 << 30)

    fns = (features, lambda f: rpn.apply({"params": params["rpn"]}, f), proposals, classify, postprocess)
    return {name: jax.jit(fn) for name, fn in zip(STAGES, fns)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frcnn-batch", type=int, default=1)
    parser.add_argument("--frcnn-size", type=int, default=320)
    args = parser.parse_args(argv)
    device = select_device(args.device, parser)

    import torch

    size, batch = args.frcnn_size, args.frcnn_batch
    images = faster_rcnn_images(batch, size)
    model = faster_rcnn.FasterRCNNResNet50(num_classes=20)
    x = jnp.asarray(images)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), x[:1])
    feature_hw = (math.ceil(size / 32), math.ceil(size / 32))
    ours = our_stages(model, variables, (size, size), feature_hw)
    feats = ours["trunk"](x)
    objectness, deltas = ours["RPN head"](feats)
    rois, _, valid = ours["proposals"](objectness, deltas)
    logits, regression = ours["RoI head"](feats, rois, valid)
    dets = ours["postprocess"](logits, regression, rois, valid)
    predict = faster_rcnn.predict_fn(model)
    full = predict(variables, x)
    # separately compiled stages sum in another order than the one program: boxes agree to float32 rounding
    for name, atol in (("boxes", 0.05), ("scores", 1e-3), ("classes", 0), ("num_valid", 0)):
        a, b = np.asarray(getattr(dets, name)), np.asarray(getattr(full, name))
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=atol):
            diff = np.abs(a.astype(float) - b.astype(float)).max() if a.shape == b.shape else a.shape
            raise AssertionError(f"stages disagree with predict_fn on {name}: max difference {diff} > {atol}")
    our_calls = {"trunk": lambda: ours["trunk"](x), "RPN head": lambda: ours["RPN head"](feats),
                 "proposals": lambda: ours["proposals"](objectness, deltas),
                 "RoI head": lambda: ours["RoI head"](feats, rois, valid),
                 "postprocess": lambda: ours["postprocess"](logits, regression, rois, valid),
                 "whole predict": lambda: predict(variables, x)}

    tv = torchvision_faster_rcnn(size, device.torch)
    xt = list(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device.torch))
    with torch.inference_mode():
        image_list, _ = tv.transform(xt)
        tv_feats = {"0": tv.backbone(image_list.tensors)}
        tv_props, _ = tv.rpn(image_list, tv_feats)
        sizes = image_list.image_sizes
        pooled = tv.roi_heads.box_roi_pool(tv_feats, tv_props, sizes)
        tv_logits, tv_regression = tv.roi_heads.box_predictor(tv.roi_heads.box_head(pooled))

    def timed(fn):
        def call():
            with torch.inference_mode():
                return fn()
        return median_time(call, args.repeats, sync=device.sync)

    def rpn_head():
        return tv.rpn.head([tv_feats["0"]])

    def roi_head():
        return tv.roi_heads.box_predictor(tv.roi_heads.box_head(tv.roi_heads.box_roi_pool(tv_feats, tv_props, sizes)))

    peer = {"transform": timed(lambda: tv.transform(xt)), "trunk": timed(lambda: tv.backbone(image_list.tensors)),
            "RPN head": timed(rpn_head), "RoI head": timed(roi_head),
            "postprocess": timed(lambda: tv.roi_heads.postprocess_detections(tv_logits, tv_regression, tv_props,
                                                                             sizes)),
            "whole predict": timed(lambda: tv(xt))}
    peer["proposals"] = max(timed(lambda: tv.rpn(image_list, tv_feats)) - peer["RPN head"], 0.0)
    rows = [Row(f"{name}, batch {batch}", median_time(our_calls[name], args.repeats), peer[name])
            for name in STAGES + ("whole predict",)]
    print_table(f"Faster R-CNN R50-C5 predict ({size} px) by stage on {device.describe()} (random weights)", rows,
                "torchvision", device=device)
    print(f"torchvision's transform (resize + normalize; ours normalizes in the trunk row): "
          f"{peer['transform'] * 1e3:.2f} ms")
    print(f"valid proposals per image: ours {np.asarray(valid).sum(1).tolist()}, "
          f"torchvision {[int(p.shape[0]) for p in tv_props]}")


if __name__ == "__main__":
    main()
