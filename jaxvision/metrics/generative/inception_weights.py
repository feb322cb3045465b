"""FID Inception weights: find, verify, read and convert them. Nothing is ever downloaded.

The FID network's weights are pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (a PyTorch state dict of
the TensorFlow 2015-12-05 Inception graph), published at :data:`FID_WEIGHTS_URL`. Fetch it once by hand and
either point ``path`` at it, set ``JAXVISION_FID_WEIGHTS``, or leave it where pytorch-fid caches it
(``~/.cache/torch/hub/checkpoints/``). Reading a ``.pth`` needs torch and uses
``torch.load(weights_only=True)`` (tensors only, never arbitrary unpickling). To drop the torch dependency,
convert once:

    python -m jaxvision.metrics.generative.inception_weights pt_inception-2015-12-05-6726825d.pth fid_inception.npz

The ``.npz`` holds the same arrays under the same (PyTorch) names plus ``__source_sha256__``.

Verification: the file name carries the first 8 hex digits of the file's SHA-256 (torch.hub's convention,
``6726825d``); a ``.pth`` whose SHA-256 does not start with them, or an ``.npz`` converted from one, is rejected
unless ``check_hash=False`` (then results are labelled with the actual hash, so they stay traceable).
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import sys
from collections.abc import Mapping

import numpy as np

__all__ = [
    "FID_WEIGHTS_URL",
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_SHA256_PREFIX",
    "default_weights_path",
    "sha256_file",
    "read_state_dict",
    "state_dict_to_variables",
    "load_inception_variables",
    "convert_pth_to_npz",
]

FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
ENV_VAR = "JAXVISION_FID_WEIGHTS"
_SOURCE_KEY = "__source_sha256__"


def _candidates() -> list[pathlib.Path]:
    home = pathlib.Path.home()
    torch_home = pathlib.Path(os.environ.get("TORCH_HOME", home / ".cache" / "torch"))
    return [
        home / ".cache" / "jaxvision" / "fid_inception.npz",
        torch_home / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME,
    ]


def _missing_message(tried: list[str]) -> str:
    """One line: where we looked, the file to download, where to put it (jaxvision never downloads)."""
    return (
        f"FID Inception weights not found (tried: {', '.join(tried)}); jaxvision never downloads at run time: "
        f"download {FID_WEIGHTS_URL} once and pass its path (--weights FILE / weights=FILE), set ${ENV_VAR}, or "
        f"put it in ~/.cache/torch/hub/checkpoints/ (to drop torch, convert it: python -m "
        f"jaxvision.metrics.generative.inception_weights {FID_WEIGHTS_FILENAME} ~/.cache/jaxvision/fid_inception.npz)"
    )


def default_weights_path(path: str | os.PathLike | None = None) -> pathlib.Path:
    """Resolve the weights file: ``path``, else ``$JAXVISION_FID_WEIGHTS``, else the cache locations.

    Raises:
      FileNotFoundError: with instructions on where to get the file.
    """
    if path is not None:
        p = pathlib.Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(_missing_message([str(p)]))
        return p
    tried = []
    if os.environ.get(ENV_VAR):
        p = pathlib.Path(os.environ[ENV_VAR]).expanduser()
        if p.is_file():
            return p
        tried.append(f"${ENV_VAR}={p}")
    for p in _candidates():
        if p.is_file():
            return p
        tried.append(str(p))
    raise FileNotFoundError(_missing_message(tried))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_known(sha: str, what: str, expected: str | None = None) -> None:
    if expected is not None:
        if sha != expected.lower():
            raise ValueError(f"{what}: SHA-256 {sha} differs from the expected {expected}")
        return
    if not sha.startswith(FID_WEIGHTS_SHA256_PREFIX):
        raise ValueError(
            f"{what}: SHA-256 {sha} does not start with {FID_WEIGHTS_SHA256_PREFIX}, so it is not pytorch-fid's "
            f"{FID_WEIGHTS_FILENAME} ({FID_WEIGHTS_URL}); FID values would not be comparable with published ones. "
            "Pass check_hash=False to use it anyway."
        )


def read_state_dict(
    path: str | os.PathLike, check_hash: bool = True, expected_sha256: str | None = None
) -> tuple[dict[str, np.ndarray], str]:
    """Read a PyTorch-named Inception state dict from ``.pth`` (via torch) or converted ``.npz``.

    ``expected_sha256`` (full 64 hex digits) pins the exact file instead of the known 8-digit prefix.

    Returns:
      (state dict of float32 numpy arrays, SHA-256 of the original ``.pth``: the file's own for a ``.pth``,
      the recorded source hash for a converted ``.npz``).
    """
    path = pathlib.Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            sd = {k: np.asarray(f[k], np.float32) for k in f.keys() if k != _SOURCE_KEY}
            sha = str(f[_SOURCE_KEY]) if _SOURCE_KEY in f else "npz:" + sha256_file(path)
        if check_hash:
            _check_known(sha, f"{path} (converted from a file with SHA-256 {sha})", expected_sha256)
    else:
        try:
            import torch
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"reading {path} (a PyTorch .pth) needs torch; install it, or convert the file once on a machine "
                "with torch: python -m jaxvision.metrics.generative.inception_weights IN.pth OUT.npz"
            ) from e
        sha = sha256_file(path)
        if check_hash:
            _check_known(sha, str(path), expected_sha256)
        raw = torch.load(path, map_location="cpu", weights_only=True)
        sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in raw.items()}
    return sd, sha


def state_dict_to_variables(state_dict: Mapping[str, np.ndarray], template=None) -> dict:
    """Map a pytorch-fid Inception state dict to Flax variables of :class:`jaxvision.nn.FIDInceptionV3`.

    ``X.conv.weight`` [O, I, kh, kw] -> ``params/X/conv/kernel`` [kh, kw, I, O]; ``X.bn.{weight, bias}`` ->
    ``params/X/bn/{scale, bias}``; ``X.bn.running_{mean, var}`` -> ``batch_stats/X/bn/{mean, var}``;
    ``fc.weight`` [C, 2048] -> ``params/fc/kernel`` [2048, C]. ``num_batches_tracked`` is ignored.

    Args:
      state_dict: name -> array.
      template: optional variables (or shape structs) to check names and shapes against.

    Raises:
      ValueError: unknown, missing or mis-shaped entries (e.g. a torchvision Inception instead of the FID one).
    """
    params: dict = {}
    stats: dict = {}

    def put(tree, keys, value):
        for k in keys[:-1]:
            tree = tree.setdefault(k, {})
        tree[keys[-1]] = value

    for name, value in state_dict.items():
        parts = name.split(".")
        value = np.asarray(value, np.float32)
        if parts[-1] == "num_batches_tracked":
            continue
        if parts[-2:] == ["conv", "weight"] and value.ndim == 4:
            put(params, parts[:-1] + ["kernel"], value.transpose(2, 3, 1, 0))
        elif parts[-2] == "bn" and parts[-1] in ("weight", "bias"):
            put(params, parts[:-1] + ["scale" if parts[-1] == "weight" else "bias"], value)
        elif parts[-2] == "bn" and parts[-1] in ("running_mean", "running_var"):
            put(stats, parts[:-1] + [parts[-1].removeprefix("running_")], value)
        elif parts == ["fc", "weight"]:
            put(params, ["fc", "kernel"], value.T)
        elif parts == ["fc", "bias"]:
            put(params, ["fc", "bias"], value)
        else:
            raise ValueError(f"state_dict: unexpected entry {name!r} {value.shape} for the FID InceptionV3")
    variables = {"params": params, "batch_stats": stats}
    if template is not None:
        _check_against(variables, template)
    return variables


def _check_against(variables, template):
    import jax

    got = {jax.tree_util.keystr(p): np.shape(v) for p, v in jax.tree_util.tree_leaves_with_path(variables)}
    want = {jax.tree_util.keystr(p): tuple(v.shape) for p, v in jax.tree_util.tree_leaves_with_path(template)}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    bad = sorted(k for k in set(got) & set(want) if got[k] != want[k])
    if missing or extra or bad:
        raise ValueError(
            "state_dict: does not match the FID InceptionV3: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {extra[:5]}, "
            f"wrong shapes {[(k, got[k], want[k]) for k in bad[:5]]}"
        )


def inception_template():
    """Shape structs of :class:`FIDInceptionV3` variables (no compute)."""
    import jax
    import jax.numpy as jnp

    from jaxvision.nn.inception import FIDInceptionV3

    return jax.eval_shape(FIDInceptionV3().init, jax.random.key(0), jnp.zeros((1, 299, 299, 3)))


def load_inception_variables(
    path=None, check_hash: bool = True, expected_sha256: str | None = None
) -> tuple[dict, str, pathlib.Path]:
    """Find, verify and convert the FID Inception weights. Returns (Flax variables, SHA-256, resolved path)."""
    resolved = default_weights_path(path)
    sd, sha = read_state_dict(resolved, check_hash=check_hash, expected_sha256=expected_sha256)
    return state_dict_to_variables(sd, inception_template()), sha, resolved


def convert_pth_to_npz(pth: str | os.PathLike, npz: str | os.PathLike, check_hash: bool = True) -> str:
    """Convert pytorch-fid's ``.pth`` to an ``.npz`` usable without torch. Returns the ``.pth`` SHA-256."""
    sd, sha = read_state_dict(pth, check_hash=check_hash)
    state_dict_to_variables(sd, inception_template())  # validate before writing
    npz = pathlib.Path(npz).expanduser()
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz, **sd, **{_SOURCE_KEY: np.asarray(sha)})
    return sha


def main(argv: list[str] | None = None) -> int:
    """``python -m jaxvision.metrics.generative.inception_weights IN.pth OUT.npz [--no-check-hash]``."""
    import argparse

    ap = argparse.ArgumentParser(description="Convert pytorch-fid's Inception .pth to a torch-free .npz")
    ap.add_argument("pth")
    ap.add_argument("npz")
    ap.add_argument("--no-check-hash", action="store_true", help="accept a file that is not the known one")
    args = ap.parse_args(argv)
    sha = convert_pth_to_npz(args.pth, args.npz, check_hash=not args.no_check_hash)
    print(f"wrote {args.npz} (source sha256 {sha})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
