"""benchmarks/: the shared ``--device cpu|gpu`` selection (no torch, no GPU needed; nothing is benchmarked)."""
import argparse

import jax
import pytest

from benchmarks import harness
from benchmarks.harness import Device, DeviceUnavailable, add_device_argument, median_time, select_device

needs_cpu_only = pytest.mark.skipif(jax.default_backend() != "cpu", reason="this machine's JAX has an accelerator")


def _parser():
    return add_device_argument(argparse.ArgumentParser(prog="bench"))


def test_device_defaults_to_cpu_and_cpu_selects_the_host():
    p = _parser()
    assert p.parse_args([]).device == "cpu"
    dev = select_device(p.parse_args(["--device", "cpu"]).device, p)
    assert dev == Device("cpu", "cpu", harness.cpu_model())
    assert not dev.is_gpu and dev.describe() == "CPU"
    assert jax.default_backend() == "cpu"
    dev.sync()  # a no-op on the CPU: no torch needed


def test_unknown_device_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["--device", "tpu"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@needs_cpu_only
def test_gpu_without_a_gpu_is_one_clear_error_line(capsys):
    p = _parser()
    with pytest.raises(SystemExit) as e:
        select_device(p.parse_args(["--device", "gpu"]).device, p)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bench: error: --device gpu needs a GPU")
    assert "JAX's default backend is 'cpu'" in err[-1]


@needs_cpu_only
def test_gpu_without_a_parser_raises():
    with pytest.raises(DeviceUnavailable, match="JAX's default backend is 'cpu'"):
        select_device("gpu", require_torch=False)


@needs_cpu_only
@pytest.mark.parametrize("script", ["ops_boxes", "ops_roi", "ops", "dcgan", "detectors", "faster_rcnn_stages", "fid",
                                    "coco_eval", "gpu", "blocked_conv"])
def test_every_script_refuses_gpu_before_any_work(script, capsys):
    import importlib

    module = importlib.import_module(f"benchmarks.{script}")
    with pytest.raises(SystemExit) as e:
        module.main(["--device", "gpu"])
    assert e.value.code == 2
    assert "error: --device gpu needs a GPU" in capsys.readouterr().err


def test_median_time_syncs_before_every_clock_read():
    calls = []
    median_time(lambda: calls.append("call"), repeats=3, warmup=2, sync=lambda: calls.append("sync"))
    assert calls == ["call", "call", "sync"] + ["call", "sync"] * 3


def test_table_header_names_the_card():
    gpu = Device("gpu", "cuda", "NVIDIA Test Card")
    assert harness.machine(gpu).startswith("GPU NVIDIA Test Card, jax")
    text = harness.print_table("t", [harness.Row("r", 1.0, 2.0)], "peer", device=gpu)
    assert "machine: GPU NVIDIA Test Card" in text and "| r | 1000.00 | 2000.00 | 2.00x |" in text
    assert harness.cpu_model() in harness.machine(harness.host_device())


def test_blocked_conv_benchmark_runs(capsys):
    """``benchmarks/blocked_conv.py`` (the documented command) at toy size without torch: the layer rows (checked
    against lax inside) and the SRResNet step row, and the model's last conv is restored afterwards."""
    from benchmarks import blocked_conv
    from jaxvision.models.gan import srgan
    from jaxvision.ops import thin_output_conv

    blocked_conv.main(["--size", "32", "--repeats", "1", "--skip-torch"])
    out = capsys.readouterr().out
    assert out.count("| 9x9 conv") == 2 and "| SRResNet step" in out
    assert srgan.thin_output_conv is thin_output_conv


def test_selective_search_benchmark_runs(tmp_path):
    """``benchmarks/selective_search.py`` (the documented command) on two images: rows for OpenCV and ours."""
    pytest.importorskip("cv2")
    from benchmarks import selective_search

    out = tmp_path / "ss.json"
    rows = selective_search.main(["--images", "2", "--scales", "1", "--rankings", "2", "--json", str(out)])
    assert [r["method"] for r in rows] == ["opencv fast", "ours fast (paper ranking)", "ours fast (level ranking)"]
    assert all(0 <= v <= 1 for r in rows for v in r["recall@0.5"].values()) and out.exists()
    assert all(r["rankings"] == 2 and r["cpu_s_per_image"] > 0 for r in rows)


@pytest.mark.slow
def test_input_pipeline_benchmark_writes_its_json(tmp_path, capsys):
    """README's `benchmarks/input_pipeline.py` at toy size: every row runs and the JSON has the reported keys."""
    import json

    from benchmarks import input_pipeline

    out = tmp_path / "input_pipeline.json"
    assert input_pipeline.main(["--images", "12", "--batch", "4", "--batches", "3", "--workers", "1", "--size", "64",
                                "--cpu-images", "8", "--out", str(out)]) == 0
    m = json.loads(out.read_text())["metrics"]
    for key in ("old_images_per_s", "ssd_host_threads=2_images_per_s", "ssd_geometric_threads=2_ratio",
                "ssd_geometric_processes=1_steady_images_per_s", "cpu_ms_per_image_old",
                "expected_quiet_2core_ratio_ssd_geometric", "host_cores_for_ssd300_voc_gpu_ssd_host",
                "ssd_geometric_threads=3_images_per_s", "ssd_host_best_ratio", "cpu_ms_per_image_ssd_geometric_generic",
                "in_place_vs_generic_cpu_ratio"):
        assert m[key] > 0, key
    assert m["ssd300_voc_gpu_steps_per_s_needed"] == 38.3 and set(m["stage_cpu_ms_per_image"]) >= {
        "decode_pil", "decode_opencv", "iou_crop", "choose_crop", "photometric_host"}
    assert "ssd_geometric" in capsys.readouterr().out
