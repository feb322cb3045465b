"""Import torchvision ImageNet weights from a local ``.pth`` into the Flax VGG / ResNet backbones.

Nothing is downloaded: users who have e.g. ``vgg16-397923af.pth`` or ``resnet18-f37072fd.pth`` pass its path.
The file is read with ``torch.load(weights_only=True)`` (tensors only; never unpickles code); torch is imported
lazily and is needed only here.

Layouts: conv ``OIHW -> HWIO``; linear ``[out, in] -> [in, out]``; VGG's first classifier layer additionally
reorders its input from PyTorch's ``(C, 7, 7)`` flatten to our NHWC ``(7, 7, C)`` flatten. BatchNorm
``weight/bias/running_mean/running_var`` -> ``scale/bias`` (params) and ``mean/var`` (batch_stats).
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np


def load_state_dict(path: str) -> dict[str, np.ndarray]:
    """Read a PyTorch ``state_dict`` file as ``{name: float32 numpy array}`` (tensors only).

    Args:
        path: local ``.pth`` / ``.pt`` file holding a ``state_dict`` (or ``{'state_dict': ...}``).

    Raises:
        ImportError: torch is not installed (``pip install 'jaxvision[bench]'`` or ``pip install torch``).
    """
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("importing torchvision weights needs torch: pip install torch") from e
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    return {k: v.detach().cpu().float().numpy() for k, v in sd.items() if hasattr(v, "detach") and v.ndim > 0}


def _conv(w):
    return np.transpose(w, (2, 3, 1, 0))  # OIHW -> HWIO


def _bn(sd, prefix, params, stats, name):
    params[name] = {"scale": sd[prefix + ".weight"], "bias": sd[prefix + ".bias"]}
    stats[name] = {"mean": sd[prefix + ".running_mean"], "var": sd[prefix + ".running_var"]}


def vgg_variables_from_torch(state_dict: Mapping[str, np.ndarray], batch_norm: bool) -> dict:
    """Map a torchvision VGG ``state_dict`` to ``{'params': ..., 'batch_stats': ...}`` for ``VGG``.

    Args:
        state_dict: from ``load_state_dict`` (keys ``features.{i}.*``, ``classifier.{0,3,6}.*``).
        batch_norm: True for the ``vgg*_bn`` models (a BatchNorm follows every conv).
    """
    params, stats = {}, {}
    idx = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"features\.(\d+)\.weight$", k))})
    convs = [i for i in idx if state_dict[f"features.{i}.weight"].ndim == 4]
    for k, i in enumerate(convs):
        params[f"conv{k}"] = {"kernel": _conv(state_dict[f"features.{i}.weight"]),
                              "bias": state_dict[f"features.{i}.bias"]}
        if batch_norm:
            _bn(state_dict, f"features.{i + 1}", params, stats, f"bn{k}")
    for n, i in enumerate((0, 3, 6)):
        key = f"classifier.{i}.weight"
        if key not in state_dict:
            continue
        w = state_dict[key]
        if n == 0 and w.shape[1] % 49 == 0:  # (C, 7, 7) flatten -> (7, 7, C) flatten
            c = w.shape[1] // 49
            w = w.reshape(w.shape[0], c, 7, 7).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        params[f"fc{n}"] = {"kernel": w.T, "bias": state_dict[f"classifier.{i}.bias"]}
    out = {"params": params}
    if batch_norm:
        out["batch_stats"] = stats
    return out


def resnet_variables_from_torch(state_dict: Mapping[str, np.ndarray]) -> dict:
    """Map a torchvision ResNet ``state_dict`` to ``{'params': ..., 'batch_stats': ...}`` for ``ResNet``."""
    params, stats = {}, {}
    params["conv1"] = {"kernel": _conv(state_dict["conv1.weight"])}
    _bn(state_dict, "bn1", params, stats, "bn1")
    blocks = sorted({(int(m.group(1)), int(m.group(2))) for k in state_dict
                     if (m := re.match(r"layer(\d+)\.(\d+)\.", k))})
    for li, bi in blocks:
        pre, name = f"layer{li}.{bi}", f"layer{li}_{bi}"
        bp, bs = {}, {}
        for c in (1, 2, 3):
            if f"{pre}.conv{c}.weight" in state_dict:
                bp[f"conv{c}"] = {"kernel": _conv(state_dict[f"{pre}.conv{c}.weight"])}
                _bn(state_dict, f"{pre}.bn{c}", bp, bs, f"bn{c}")
        if f"{pre}.downsample.0.weight" in state_dict:
            bp["downsample_conv"] = {"kernel": _conv(state_dict[f"{pre}.downsample.0.weight"])}
            _bn(state_dict, f"{pre}.downsample.1", bp, bs, "downsample_bn")
        params[name], stats[name] = bp, bs
    if "fc.weight" in state_dict:
        params["fc"] = {"kernel": state_dict["fc.weight"].T, "bias": state_dict["fc.bias"]}
    return {"params": params, "batch_stats": stats}


def merge_pretrained(variables: Mapping, pretrained: Mapping, prefix: tuple[str, ...] = (),
                     strict: bool = False) -> tuple[dict, list[str]]:
    """Overwrite leaves of ``variables`` with ``pretrained`` ones of the same path and shape.

    Args:
        variables: a model's ``{'params': ..., 'batch_stats': ...}`` (e.g. from ``model.init``).
        pretrained: converted weights (``vgg_variables_from_torch`` / ``resnet_variables_from_torch``).
        prefix: where the backbone sits inside each collection, e.g. ``('backbone',)`` for a detector.
        strict: raise ValueError on any pretrained leaf that is missing or has another shape; else skip it
            (e.g. an ImageNet classifier head on a model without one).

    Returns:
        ``(new_variables, skipped)``: updated nested dict (numpy/jax leaves) and the skipped leaf paths.
    """
    import jax

    out = jax.tree_util.tree_map(lambda x: x, dict(variables))
    out = {k: _to_dict(v) for k, v in out.items()}
    skipped = []

    def walk(src, path):
        for k, v in src.items():
            if isinstance(v, Mapping):
                walk(v, path + (k,))
                continue
            node = out
            for p in path[:1] + prefix + path[1:]:
                node = node.get(p) if isinstance(node, dict) else None
                if node is None:
                    break
            name = "/".join(path[:1] + prefix + path[1:] + (k,))
            if node is None or k not in node or tuple(np.shape(node[k])) != tuple(v.shape):
                got = None if node is None or k not in node else tuple(np.shape(node[k]))
                if strict:
                    raise ValueError(f"pretrained: {name} has shape {tuple(v.shape)}, model has {got}")
                skipped.append(name)
                continue
            node[k] = np.asarray(v, dtype=np.asarray(node[k]).dtype)

    walk(pretrained, ())
    return out, skipped


def _to_dict(tree):
    if isinstance(tree, Mapping):
        return {k: _to_dict(v) for k, v in tree.items()}
    return tree
