"""One process of the 2-process CPU evaluation test (see test_multihost.py): every eval output of this process.

Usage: python multihost_eval_worker.py WORKDIR UNUSED OUT.npz   (writes OUT with ``.<process id>`` before .npz)
with JAXVISION_COORDINATOR / _NUM_PROCESSES / _PROCESS_ID set.
"""
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")

from jaxvision.train import parallel  # noqa: E402

parallel.initialize_distributed()

import numpy as np  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from multihost_eval_problem import evaluate_all  # noqa: E402


def main(out):
    assert jax.process_count() == 2, jax.process_count()
    got = evaluate_all()  # this host's slice of every batch, gathered
    np.savez(out.replace(".npz", f".{jax.process_index()}.npz"), local_devices=jax.local_device_count(), **got)


if __name__ == "__main__":
    main(sys.argv[3])
