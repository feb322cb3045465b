"""Hierarchical grouping of selective search (Uijlings et al. 2013, Algorithm 1 and sec. 3.2).

Starting from the regions of a segmentation, the two most similar *adjacent* regions are merged until one region
is left; every region ever formed (the initial ones, then each merge) is a proposal. Similarity is a sum of the
paper's four measures, each in [0, 1]:

- colour: histogram intersection of the L1-normalised colour histograms;
- texture: histogram intersection of the L1-normalised Gaussian-derivative histograms;
- size: ``1 - (size_i + size_j) / size(image)`` (small regions merge early);
- fill: ``1 - (size(BB_ij) - size_i - size_j) / size(image)`` (regions that fill each other's gaps merge early).

A merged region's histograms are the size-weighted means of its parts, its box the union, its neighbours the union
of theirs. The best pair is found with a heap whose stale entries (a merged-away region) are skipped.
"""
from __future__ import annotations

import heapq

import numpy as np

SIMILARITIES = ("color", "texture", "size", "fill")


def _similarity(use, size, box, color, texture, i, js, image_area):
    """Similarity of region ``i`` with regions ``js`` (int array), float64 [len(js)]."""
    s = np.zeros(len(js))
    if "color" in use:
        s += np.minimum(color[i], color[js]).sum(1)
    if "texture" in use:
        s += np.minimum(texture[i], texture[js]).sum(1)
    if "size" in use:
        s += 1.0 - (size[i] + size[js]) / image_area
    if "fill" in use:
        bw = np.maximum(box[i, 2], box[js, 2]) - np.minimum(box[i, 0], box[js, 0])
        bh = np.maximum(box[i, 3], box[js, 3]) - np.minimum(box[i, 1], box[js, 1])
        s += 1.0 - (bw * bh - size[i] - size[js]) / image_area
    return s


def hierarchical_grouping(features: dict, pairs: np.ndarray, image_area: float,
                          similarities: tuple[str, ...] = SIMILARITIES) -> np.ndarray:
    """All regions of the hierarchy in the order they are formed.

    Args:
      features: ``regions.region_features`` of the R initial regions ('size', 'box', 'color', 'texture').
      pairs: int [P, 2] adjacent region pairs (``regions.adjacent_pairs``).
      image_area: H * W of the segmented image.
      similarities: a non-empty subset of ``SIMILARITIES`` summed into the merge criterion.

    Returns:
      boxes float64 [R + M, 4] (x0, y0, x1, y1), pixel edges: the R initial regions, then the M merges (M = R - 1
      for a connected image; the last one is then the whole image); levels int64 [R + M]: depth above the leaves
      (initial regions 1, a merge ``1 + max`` of its parts').
    """
    use = tuple(similarities)
    if not use or any(u not in SIMILARITIES for u in use):
        raise ValueError(f"similarities: expected a non-empty subset of {SIMILARITIES}, got {similarities!r}")
    r = len(features["size"])
    n = 2 * r - 1  # at most R - 1 merges
    size = np.zeros(n)
    size[:r] = features["size"]
    box = np.zeros((n, 4))
    box[:r] = features["box"]
    color = np.zeros((n, features["color"].shape[1]), np.float32)
    color[:r] = features["color"]
    texture = np.zeros((n, features["texture"].shape[1]), np.float32)
    texture[:r] = features["texture"]
    level = np.ones(n, np.int64)
    alive = np.zeros(n, bool)
    alive[:r] = True
    neighbours = [set() for _ in range(n)]
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    for a, b in pairs.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    sims = np.zeros(len(pairs))
    for i in np.unique(pairs[:, 0]).tolist():  # vectorised per first index
        sel = pairs[:, 0] == i
        sims[sel] = _similarity(use, size, box, color, texture, i, pairs[sel, 1], image_area)
    heap = [(-s, a, b) for s, (a, b) in zip(sims.tolist(), pairs.tolist())]
    heapq.heapify(heap)
    t = r
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        si, sj = size[i], size[j]
        size[t] = si + sj
        box[t] = (min(box[i, 0], box[j, 0]), min(box[i, 1], box[j, 1]),
                  max(box[i, 2], box[j, 2]), max(box[i, 3], box[j, 3]))
        color[t] = (si * color[i] + sj * color[j]) / (si + sj)
        texture[t] = (si * texture[i] + sj * texture[j]) / (si + sj)
        level[t] = 1 + max(level[i], level[j])
        alive[i] = alive[j] = False
        alive[t] = True
        nb = (neighbours[i] | neighbours[j]) - {i, j}
        neighbours[t] = nb
        for k in nb:
            neighbours[k].discard(i)
            neighbours[k].discard(j)
            neighbours[k].add(t)
        if nb:
            js = np.fromiter(nb, np.int64, len(nb))
            for s, k in zip(_similarity(use, size, box, color, texture, t, js, image_area).tolist(), js.tolist()):
                heapq.heappush(heap, (-s, k, t))
        t += 1
    return box[:t], level[:t]
