"""python -m oecl_core.bench runs end to end on the CPU with tiny settings and writes the figures the planner reads."""
import json

import pytest

from oecl_core import bench


def test_bench_runs_and_writes_its_figures(tmp_path, one_torch_thread, capsys):
    path = tmp_path / "bench.json"
    report = bench.main(["--sizes", "32", "--width", "0.0625", "--batch", "4", "--steps", "1", "--warmup", "0",
                         "--rounds", "1", "--switches", "bf16", "foreach_lars", "--workers", "0", "--score-images", "4", "--n-aug", "1",
                         "--large-score-batch", "16", "--json", str(path)])
    assert json.loads(path.read_text())["sizes"]["32"]["batch"] == 4
    size = report["sizes"]["32"]
    assert size["views_per_step"] == 16 and size["train_views_per_s"] > 0 and size["pil_views_per_s"] > 0
    assert size["flops_per_step"] > 0 and "fraction_of_peak" not in size  # no bf16 peak for a CPU
    assert set(size["switches"]) == {"bf16", "foreach_lars"}
    assert size["switches"]["foreach_lars"]["optimizer_ms_on"] > 0
    assert set(size["score_views_per_s_by_forward_batch"]) == {2048, 16}
    out = capsys.readouterr().out
    assert "engine step / PIL pipeline" in out and "speed-up of bf16" in out


def test_peak_table_matches_device_names_and_can_be_overridden():
    assert bench.peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
    assert bench.peak_bf16_tflops("NVIDIA H200") == 989.0
    assert bench.peak_bf16_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert bench.peak_bf16_tflops("NVIDIA GeForce GTX 1080") is None


def test_bad_settings_are_refused():
    with pytest.raises(SystemExit):
        bench.main(["--steps", "0"])
