"""A run SIGKILLed mid-training and resumed ends with exactly the parameters of an uninterrupted run."""
import os
import signal
import subprocess
import sys

import numpy as np

from jaxvision.train import read_metrics

WORKER = os.path.join(os.path.dirname(__file__), "resume_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(workdir, num_steps, kill_at, out):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    return subprocess.run([sys.executable, WORKER, str(workdir), str(num_steps), str(kill_at), str(out)],
                          env=env, capture_output=True, text=True, timeout=540)


def test_sigkill_and_resume_is_exact(tmp_path):
    steps = 14
    sys.path.insert(0, os.path.dirname(WORKER))
    try:
        import resume_worker  # the uninterrupted reference runs in this process (same single-device program)
    finally:
        sys.path.pop(0)
    resume_worker.main(str(tmp_path / "ref"), steps, 0, str(tmp_path / "ref.npz"))

    killed = _run(tmp_path / "run", steps, 10, tmp_path / "never.npz")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "never.npz").exists()
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["4", "8"]
    assert max(r["step"] for r in read_metrics(tmp_path / "run")) == 10  # logged past the checkpoint

    resumed = _run(tmp_path / "run", steps, 0, tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = np.load(tmp_path / "ref.npz"), np.load(tmp_path / "resumed.npz")
    assert int(a["step"]) == int(b["step"]) == steps
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    steps_logged = [r["step"] for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    assert steps_logged == list(range(2, steps + 1, 2))  # records after step 8 of the killed run were replaced
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["12", "14"]
