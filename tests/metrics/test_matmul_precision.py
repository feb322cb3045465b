"""Every matrix product behind a reported GAN/image metric asks for precision=HIGHEST.

On GPUs and TPUs the default precision of a float32 dot is TF32/bfloat16-like (about 3 decimal digits), which
would make float32 metrics inexact there; on the CPU it makes no difference, so CI checks the traced programs.
"""
import jax
import jax.extend  # noqa: F401  (jax.extend.core.Jaxpr)
import jax.numpy as jnp
import pytest

from jaxvision.metrics.generative import frechet, kid, stats
from jaxvision.metrics.image import psnr_ssim as image

HIGHEST = jax.lax.Precision.HIGHEST


def _dot_precisions(jaxpr, out):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
            out.append(eqn.params["precision"])
        for value in eqn.params.values():  # sub-programs: pjit, cond branches, while bodies, custom_jvp ...
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    _dot_precisions(sub.jaxpr, out)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    _dot_precisions(sub, out)
    return out


def _z(*shape, dtype=jnp.float32):
    return jnp.zeros(shape, dtype)


CASES = {
    "frechet float32": lambda: (frechet._frechet, (_z(8), _z(8, 8), _z(8), _z(8, 8))),
    "frechet float64": lambda: (
        frechet._frechet, tuple(_z(*s, dtype=jnp.float64) for s in ((8,), (8, 8), (8,), (8, 8)))
    ),
    "frechet from features": lambda: (frechet._frechet_features, (_z(5, 8), _z(6, 8))),
    "stats batch": lambda: (lambda x, m: stats._batch_stats(x, m, jnp.float32), (_z(5, 8), jnp.ones(5, bool))),
    "kid mmd": lambda: (kid.polynomial_mmd2, (_z(5, 8), _z(5, 8))),
    "rgb_to_y": lambda: (image.rgb_to_y, (_z(2, 4, 4, 3),)),
    "ssim": lambda: (lambda a, b: image.ssim(a, b, 1.0), (_z(1, 16, 16, 1), _z(1, 16, 16, 1))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_dot_is_highest_precision(name):
    with jax.enable_x64(True):  # for the float64 case; the others pass float32 arrays explicitly
        fn, args = CASES[name]()
        precisions = _dot_precisions(jax.make_jaxpr(fn)(*args).jaxpr, [])
    assert precisions, "expected at least one dot"
    assert all(p == (HIGHEST, HIGHEST) for p in precisions), precisions
