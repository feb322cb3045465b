"""Two local CPU processes train together (jax.distributed + gloo collectives) and match one process."""
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxvision.data import load
from jaxvision.train import fit, read_metrics

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "multihost_worker.py")
EVAL_WORKER = os.path.join(HERE, "multihost_eval_worker.py")
ROOT = os.path.dirname(os.path.dirname(HERE))


def _gloo_available():
    """Whether this jax build has the option selecting CPU collectives (gloo) for multi-process CPU runs."""
    return "jax_cpu_collectives_implementation" in jax.config.values


# The one failure that means "this jax build cannot run collectives across CPU processes": what the CPU client of
# jax 0.10.2 raises when a multi-process computation runs without a CPU collectives implementation (reproduced
# with jax_cpu_collectives_implementation=None and a psum over two processes). Any other failure is a failure.
UNSUPPORTED = "Multiprocess computations aren't implemented on the CPU backend"


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not _gloo_available(), reason="this jax build has no CPU collectives (gloo) implementation, "
                                                   "so CPU processes cannot train together")
def test_two_processes_train_together(tmp_path):
    """Train 3 steps (checkpoint), then resume to 5 in a second 2-process launch; compare to one process."""
    _launch(tmp_path, 3)
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["3"]
    _launch(tmp_path, 5)

    # reference: one process, one device, the whole global batch of 32
    sys.path.insert(0, HERE)
    try:
        from test_loop import _problem
    finally:
        sys.path.pop(0)
    ds = load("mixture", "train", 32, kind="grid", num_examples=128, host_id=0, num_hosts=1)
    state, step = _problem()
    ref, _ = fit(state, step, ds, num_steps=5, workdir=str(tmp_path / "ref"), experiment="multihost",
                 progress=False)
    got = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(got["w"], ref.params["w"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["b"], ref.params["b"], rtol=1e-5, atol=1e-6)
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["3", "5"]
    # only process 0 logs: each (step, split) once, steps 3 (first launch) and 5 (resumed launch)
    records = [(r["step"], r["split"]) for r in read_metrics(str(tmp_path / "run"))]
    assert records == [(3, "train"), (5, "train")], records


def _launch(tmp_path, num_steps, timeout_s=540, worker=WORKER, local_devices=1):
    """Run the 2 worker processes (``local_devices`` CPU devices each); if one fails, stop the other at once (it
    would wait for it in a barrier).

    Skips only when a failed worker reports `UNSUPPORTED`; any other failure fails the test."""
    port = _free_port()
    procs, logs = [], []
    flags = "" if local_devices == 1 else f"--xla_force_host_platform_device_count={local_devices}"
    for pid in range(2):
        env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags,
               "JAXVISION_COORDINATOR": f"localhost:{port}", "JAXVISION_NUM_PROCESSES": "2",
               "JAXVISION_PROCESS_ID": str(pid)}
        logs.append(tmp_path / f"worker{pid}_{num_steps}.log")
        with open(logs[-1], "w") as log:
            procs.append(subprocess.Popen([sys.executable, worker,
                                           str(tmp_path / "run"), str(num_steps), str(tmp_path / "out.npz")],
                                          env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + timeout_s  # generous: CI machines may be loaded
    while any(p.poll() is None for p in procs):
        failed = any(p.returncode not in (None, 0) for p in procs)
        if failed or time.monotonic() > deadline:
            for p in procs:
                p.kill()
                p.wait()
            if not failed:
                pytest.fail("multi-process training timed out")
            break
        time.sleep(0.2)
    outs = [log.read_text() for log in logs]
    if any(UNSUPPORTED in o and p.returncode for o, p in zip(outs, procs)):
        pytest.skip("CPU collectives unavailable in this jax build: " + outs[0][-300:])
    if not all(p.returncode == 0 for p in procs):
        pytest.fail("a worker failed:\n" + "\n".join(o[-2000:] for o in outs))


# ~45 s on 2 loaded cores (two processes plus the 1-process reference, each compiling its evals): in the default
# suite all the same, as issue 15 asks for the 2-process eval check there
@pytest.mark.skipif(not _gloo_available(), reason="this jax build has no CPU collectives (gloo) implementation, "
                                                   "so CPU processes cannot evaluate together")
def test_two_processes_evaluate_like_one(tmp_path):
    """2 processes x 2 CPU devices: each predicts / extracts features of its slice of every batch, the results are
    gathered; both processes get exactly the outputs (detections in order, VOC / COCO metrics, FID features,
    statistics, distance) of one process, on 13 detection images and 37 FID images (uneven splits)."""
    _launch(tmp_path, 0, worker=EVAL_WORKER, local_devices=2)
    sys.path.insert(0, HERE)
    try:
        from multihost_eval_problem import N_DET, N_IMG, evaluate_all
    finally:
        sys.path.pop(0)
    ref = evaluate_all(host_id=0, num_hosts=1)  # one process (this one, 8 devices)
    assert len(ref["det_image"]) == 6 and len(ref["det_boxes"]) == N_DET and len(ref["features"]) == N_IMG
    assert 0.2 < ref["metric_map50_voc"] < 0.95, ref["metric_map50_voc"]  # a metric that drops / doubles show in
    for pid in range(2):
        got = dict(np.load(tmp_path / f"out.{pid}.npz"))
        assert int(got.pop("local_devices")) == 2
        assert sorted(got) == sorted(ref)
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-6, atol=1e-7, err_msg=f"process {pid}: {k}")
        for k in ("det_gt_boxes", "det_gt_labels", "det_gt_mask", "det_image", "metric_map50_voc", "metric_coco_ap"):
            np.testing.assert_array_equal(got[k], ref[k], err_msg=f"process {pid}: {k}")


@pytest.mark.parametrize("message, skips", [
    ("jax.errors.JaxRuntimeError: INVALID_ARGUMENT: " + UNSUPPORTED + ".", True),
    # real failures whose words the old check ("collectives" and "not") took for the unsupported signature
    ("RuntimeError: Gloo collectives cannot connect to the coordinator", False),
    ("AssertionError: collectives returned nothing", False),
    ("ValueError: CPU collectives are not initialized: call jax.distributed.initialize first", False),
])
def test_launch_skips_only_on_the_unsupported_signature(tmp_path, message, skips):
    """A worker failing with any message but `UNSUPPORTED` fails the test instead of skipping it."""
    worker = tmp_path / "failing_worker.py"
    worker.write_text(f"import sys\nprint({message!r})\nsys.exit(1)\n")
    # catch both outcomes: a skip escaping here would report this test itself as skipped, hiding the bug
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as outcome:
        _launch(tmp_path, 3, timeout_s=60, worker=str(worker))
    assert outcome.type is (pytest.skip.Exception if skips else pytest.fail.Exception), outcome.value
