"""One process of the 2-process CPU training test (see test_multihost.py).

Usage: python multihost_worker.py WORKDIR NUM_STEPS OUT.npz
with JAXVISION_COORDINATOR / _NUM_PROCESSES / _PROCESS_ID set.
"""
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")

from jaxvision.train import parallel  # noqa: E402

parallel.initialize_distributed()

import numpy as np  # noqa: E402

from jaxvision.data import load  # noqa: E402
from jaxvision.train import fit  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_loop import _problem  # noqa: E402


def main(workdir, num_steps, out):
    ds = load("mixture", "train", 32, kind="grid", num_examples=128)  # this host's 16 rows of each global batch
    assert ds.num_hosts == 2 and ds.batch(0)["x"].shape == (16, 2)
    state, step = _problem(axis_name=parallel.AXIS)
    state, _ = fit(state, step, ds, num_steps=num_steps, workdir=workdir, experiment="multihost", checkpoint_every=3,
                   log_every=5, progress=False, data_parallel=True)
    if jax.process_index() == 0:
        np.savez(out, w=np.asarray(state.params["w"]), b=np.asarray(state.params["b"]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
