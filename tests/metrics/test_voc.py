"""evaluate_voc against a reference written here from the VOC devkit's voc_eval.py rules (plain Python loops)."""
import numpy as np
import pytest

from jaxvision.metrics import average_precision, evaluate_voc


def _devkit_ap(rec, prec, use_07):
    if use_07:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap += p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def _iou(bb, g, plus_one):
    e = 1.0 if plus_one else 0.0
    iw = max(min(bb[2], g[2]) - max(bb[0], g[0]) + e, 0.0)
    ih = max(min(bb[3], g[3]) - max(bb[1], g[1]) + e, 0.0)
    inter = iw * ih
    uni = (bb[2] - bb[0] + e) * (bb[3] - bb[1] + e) + (g[2] - g[0] + e) * (g[3] - g[1] + e) - inter
    return inter / uni if uni > 0 else 0.0


def devkit_voc(data, num_classes, use_07, thr=0.5, strict=False, plus_one=False):
    """voc_eval per class: greedy by score, max-IoU GT, difficult ignored, duplicates FP."""
    pb, ps, pl, pv, gb, gl, gv, gd = data
    aps = []
    for c in range(num_classes):
        recs = {}
        npos = 0
        for i in range(len(gb)):
            idx = [j for j in range(gb.shape[1]) if gv[i, j] and gl[i, j] == c]
            recs[i] = dict(bb=gb[i, idx], diff=gd[i, idx], det=[False] * len(idx))
            npos += int(np.sum(~gd[i, idx]))
        dets = [(i, j) for i in range(len(pb)) for j in range(pb.shape[1]) if pv[i, j] and pl[i, j] == c]
        conf = np.array([ps[i, j] for i, j in dets])
        order = np.argsort(-conf, kind="stable")
        tp, fp = np.zeros(len(dets)), np.zeros(len(dets))
        for k, o in enumerate(order):
            i, j = dets[o]
            r = recs[i]
            ovmax, jmax = -np.inf, -1
            for q, g in enumerate(r["bb"]):
                ov = _iou(pb[i, j], g, plus_one)
                if ov > ovmax:
                    ovmax, jmax = ov, q
            if (ovmax > thr) if strict else (ovmax >= thr):
                if not r["diff"][jmax]:
                    if not r["det"][jmax]:
                        tp[k] = 1
                        r["det"][jmax] = True
                    else:
                        fp[k] = 1
            else:
                fp[k] = 1
        if npos == 0:
            aps.append(np.nan)
            continue
        keep = (tp + fp) > 0  # difficult-matched rows leave tp/fp cumsums unchanged; drop them
        tpc, fpc = np.cumsum(tp[keep]), np.cumsum(fp[keep])
        rec = tpc / npos
        prec = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
        aps.append(_devkit_ap(rec, prec, use_07) if len(rec) else 0.0)
    return np.array(aps)


def make_voc(seed, b=6, d=12, g=5, c=3, integer=False):
    rng = np.random.default_rng(seed)
    gxy = rng.uniform(0, 80, (b, g, 2))
    gwh = rng.uniform(5, 40, (b, g, 2))
    gb = np.concatenate([gxy, gxy + gwh], -1)
    gl = rng.integers(0, c, (b, g))
    gv = rng.random((b, g)) < 0.85
    gd = rng.random((b, g)) < 0.2
    src = rng.integers(0, g, (b, d))
    pb = np.take_along_axis(gb, src[..., None], 1) + rng.normal(0, 4, (b, d, 4))
    rand = rng.random((b, d)) < 0.3
    pxy = rng.uniform(0, 80, (b, d, 2))
    pb = np.where(rand[..., None], np.concatenate([pxy, pxy + 20], -1), pb)
    pb[..., 2:] = np.maximum(pb[..., 2:], pb[..., :2] + 1)
    pl = np.where(rng.random((b, d)) < 0.85, np.take_along_axis(gl, src, 1), rng.integers(0, c, (b, d)))
    ps = rng.random((b, d))
    ps[rng.random((b, d)) < 0.2] = 0.5  # ties
    pv = rng.random((b, d)) < 0.9
    if integer:
        pb, gb = np.round(pb), np.round(gb)
    return [x.astype(np.float32) if x.dtype.kind == "f" else x for x in (pb, ps, pl, pv, gb, gl, gv, gd)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["voc", "voc07"])
def test_voc_matches_devkit_reference(seed, method):
    data = make_voc(seed)
    pb, ps, pl, pv, gb, gl, gv, gd = data
    res = evaluate_voc(pb, ps, pl, gb, gl, gd, pred_valid=pv, gt_valid=gv, num_classes=3, method=method)
    ref = devkit_voc(data, 3, method == "voc07")
    np.testing.assert_allclose(res.ap, ref, atol=1e-6)
    np.testing.assert_allclose(res.map, np.nanmean(ref), atol=1e-6)


@pytest.mark.parametrize("strict,plus_one", [(True, True), (True, False), (False, True)])
def test_voc_devkit_flags(strict, plus_one):
    data = make_voc(5, integer=True)
    pb, ps, pl, pv, gb, gl, gv, gd = data
    res = evaluate_voc(pb, ps, pl, gb, gl, gd, pred_valid=pv, gt_valid=gv, num_classes=3, strict=strict,
                       plus_one=plus_one)
    ref = devkit_voc(data, 3, False, strict=strict, plus_one=plus_one)
    np.testing.assert_allclose(res.ap, ref, atol=1e-6)


def test_voc_strict_threshold_edge():
    # IoU exactly 0.5: counts with >= (default), not with the devkit's strict >
    gt = np.array([[[0, 0, 10, 10]]], np.float32)
    pred = np.array([[[0, 0, 10, 5]]], np.float32)
    args = (pred, np.ones((1, 1)), np.zeros((1, 1), int), gt, np.zeros((1, 1), int))
    assert evaluate_voc(*args).ap[0] == pytest.approx(1.0)
    assert evaluate_voc(*args, strict=True).ap[0] == pytest.approx(0.0)


def test_voc_difficult_and_duplicates():
    gt = np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]], np.float32)
    gd = np.array([[False, True]])
    pred = np.array([[[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]]], np.float32)
    scores = np.array([[0.9, 0.8, 0.7]])
    res = evaluate_voc(pred, scores, np.zeros((1, 3), int), gt, np.zeros((1, 2), int), gd)
    assert res.num_positives[0] == 1  # the difficult object is not a positive
    # ranked: TP, duplicate FP; the difficult match is neither -> precision [1, 0.5], recall [1, 1]
    np.testing.assert_allclose(res.precision[0], [1.0, 0.5])
    np.testing.assert_allclose(res.recall[0], [1.0, 1.0])
    assert res.ap[0] == pytest.approx(1.0)


def test_voc_empty_predictions_and_missing_class():
    gt = np.array([[[0, 0, 10, 10]]], np.float32)
    res = evaluate_voc(np.zeros((1, 0, 4)), np.zeros((1, 0)), np.zeros((1, 0), int), gt, np.ones((1, 1), int),
                       num_classes=3)
    assert np.isnan(res.ap[0]) and res.ap[1] == 0.0 and np.isnan(res.ap[2])
    assert res.map == 0.0
    res = evaluate_voc(np.array([[[0, 0, 10, 10]]]), np.ones((1, 1)), np.zeros((1, 1), int), np.zeros((1, 0, 4)),
                       np.zeros((1, 0), int), num_classes=1)
    assert np.isnan(res.map)


def test_voc_counts_valid_and_bad_shapes():
    data = make_voc(3)
    pb, ps, pl, pv, gb, gl, gv, gd = data
    counts = np.full(len(pb), 7)
    res = evaluate_voc(pb, ps, pl, gb, gl, gd, pred_valid=counts, gt_valid=gv, num_classes=3)
    mask = np.broadcast_to(np.arange(pb.shape[1])[None] < 7, pl.shape)
    ref = devkit_voc((pb, ps, pl, mask, gb, gl, gv, gd), 3, False)
    np.testing.assert_allclose(res.ap, ref, atol=1e-6)
    with pytest.raises(ValueError, match="pred_boxes"):
        evaluate_voc(pb[..., :3], ps, pl, gb, gl)
    with pytest.raises(ValueError, match="pred_scores"):
        evaluate_voc(pb, ps[:, :3], pl, gb, gl)
    with pytest.raises(ValueError, match="method"):
        evaluate_voc(pb, ps, pl, gb, gl, method="coco")
    bad = pb.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        evaluate_voc(bad, ps, pl, gb, gl)


def test_average_precision_methods_match_devkit():
    rng = np.random.default_rng(0)
    for _ in range(5):
        tp = rng.random(30) < 0.5
        t, f = np.cumsum(tp), np.cumsum(~tp)
        rec = t / 20.0
        prec = t / np.maximum(t + f, np.finfo(np.float64).eps)
        for m, use07 in (("voc", False), ("voc07", True)):
            assert float(average_precision(rec, prec, m)) == pytest.approx(_devkit_ap(rec, prec, use07), abs=1e-6)
