"""python -m oecl_core.throughput runs end to end on the CPU with tiny settings and writes the figures the planner
reads."""
import json

import pytest
import torch

from oecl_core import throughput, throughput_figures, throughput_steps


def test_throughput_runs_and_writes_its_figures(tmp_path, one_torch_thread, capsys):
    path = tmp_path / "bench.json"
    report = throughput.main(["--sizes", "32", "--width", "0.0625", "--batch", "4", "--steps", "1", "--warmup", "0",
                         "--rounds", "1", "--switches", "bf16", "foreach_lars", "--workers", "0",
                         "--score-images", "4", "--n-aug", "1", "--large-score-batch", "16", "--json", str(path)])
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
    assert throughput_steps.peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert throughput_steps.peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
    assert throughput_steps.peak_bf16_tflops("NVIDIA H200") == 989.0
    assert throughput_steps.peak_bf16_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert throughput_steps.peak_bf16_tflops("NVIDIA GeForce GTX 1080") is None


def test_bad_settings_are_refused():
    with pytest.raises(SystemExit):
        throughput.main(["--steps", "0"])


TINY = ["--sizes", "16", "--width", "0.0625", "--batch", "2", "--steps", "1", "--rounds", "1", "--warmup", "0",
        "--no-pil", "--score-images", "4", "--n-aug", "1", "--large-score-batch", "16"]


def test_the_json_says_what_was_done_and_a_switch_that_cannot_run_is_skipped(tmp_path, one_torch_thread, monkeypatch,
                                                                            capsys):
    path = tmp_path / "bench.json"
    saved = []  # the JSON after every write: rewritten figure by figure, not only at the end
    write = throughput.Recorder.save
    monkeypatch.setattr(throughput.Recorder, "save",
                        lambda self: (write(self), saved.append(json.loads(path.read_text()))))
    monkeypatch.setattr(throughput_figures, "compile_unavailable",
                        lambda device: "no C compiler (cc, gcc, c++) on PATH")
    report = throughput.main([*TINY, "--budget-seconds", "20", "--json", str(path)])
    on_disk = json.loads(path.read_text())
    assert on_disk["finished"] and on_disk["stopped"] is None and report["done"] == on_disk["done"]
    assert on_disk["done"][:4] == ["16/train/default", "16/train/bf16_other", "16/train/channels_last_other",
                                   "16/train/lars_per_parameter"]
    assert {"16/flops", "16/lars_alone", "16/score/2048", "16/score/16"} <= set(on_disk["done"])
    size = on_disk["sizes"]["16"]
    assert size["switches"]["compile"] == {"skipped": "no C compiler (cc, gcc, c++) on PATH"}
    assert size["switches"]["cuda_graphs"] == {"skipped": "CUDA graphs need a CUDA device"}
    assert on_disk["skipped"] == {"16/train/compile": "no C compiler (cc, gcc, c++) on PATH",
                                  "16/train/cuda_graphs": "CUDA graphs need a CUDA device"}
    assert size["switches"]["bf16"]["speedup"] > 0 and size["train_views_per_s"] > 0
    assert size["score_forward_cap"] > 2048 and set(size["score_views_per_s_by_forward_batch"]) == {"2048", "16"}
    assert size["score_views_per_s"] == size["score_views_per_s_by_forward_batch"]["2048"]  # the one plan reads
    assert len(saved) >= len(on_disk["done"]) + 2
    assert saved[1]["sizes"]["16"]["switches"] == {} and "16/train/default" in saved[-1]["done"]
    assert "skipped 16/train/compile: no C compiler" in capsys.readouterr().out
    from oecl_core import plan

    # a size cut short before its scoring figures: plan takes its training rate, scoring at the same FLOP rate
    partial = {k: v for k, v in size.items() if k != "score_views_per_s"}
    path.write_text(json.dumps({**on_disk, "width": 1.0, "sizes": {"32": partial}}))
    rates = plan.rates(bench_json=str(path))
    assert not rates[32].assumed and rates[32].score == rates[32].train and rates[224].assumed
    assert "scoring at the training FLOP rate" in rates[32].source


@pytest.mark.parametrize("fails_at, reason", [(1, "failed in its first steps"), (2, "failed while timed")])
def test_a_variant_that_raises_is_skipped(tmp_path, one_torch_thread, monkeypatch, fails_at, reason):
    class Broken(torch.nn.Module):  # torch.compile's stand-in: its fails_at-th forward raises
        def __init__(self, model):
            super().__init__()
            self.model, self.calls = model, 0

        def forward(self, x):
            self.calls += 1
            if self.calls >= fails_at:
                raise RuntimeError("inductor: C++ compile error\nmore lines")
            return self.model(x)

    monkeypatch.setattr(throughput_figures, "compile_unavailable", lambda device: None)
    monkeypatch.setattr(throughput_figures.torch, "compile", Broken)
    report = throughput.main([*TINY, "--switches", "compile", "--json", str(tmp_path / "b.json")])
    reason += ": RuntimeError: inductor: C++ compile error"
    assert report["sizes"]["16"]["switches"] == {"compile": {"skipped": reason}}
    assert report["skipped"] == {"16/train/compile": reason} and "16/train/default" in report["done"]


def test_no_budget_left_still_writes_a_json_saying_what_was_skipped(tmp_path):
    path = tmp_path / "bench.json"
    # not only strings, as from Python
    throughput.main([*TINY, "--sizes", 16, 32, "--budget-seconds", 0, "--json", path])
    report = json.loads(path.read_text())
    assert report["done"] == [] and report["finished"] and set(report["skipped"]) == {"16", "32"}
    assert report["skipped"]["16"].startswith("budget: 0.0 s left")


def test_a_tight_budget_skips_what_would_not_fit(tmp_path, one_torch_thread, monkeypatch):
    monkeypatch.setattr(throughput_figures, "COMPILE_S", 1e6)  # compile never fits; the default step's figures do
    report = throughput.main([*TINY, "--budget-seconds", "30", "--switches", "compile", "bf16"])
    assert report["skipped"]["16/train/compile"].startswith("budget: ")
    assert report["sizes"]["16"]["switches"]["compile"]["skipped"].startswith("budget: ")
    assert "16/train/bf16_other" in report["done"] and report["sizes"]["16"]["train_views_per_s"] > 0


def test_scoring_batches_are_capped_below_the_32_bit_limit(tmp_path, one_torch_thread, monkeypatch):
    monkeypatch.setattr(throughput_figures, "max_forward_views", lambda model, size: 6)
    report = throughput.main([*TINY, "--switches", "--n-aug", "3", "--score-images", "4"])
    size = report["sizes"]["16"]
    assert size["score_forward_cap"] == 6 and set(size["score_views_per_s_by_forward_batch"]) == {6}


def test_a_run_stopped_by_sigterm_saves_why(tmp_path, monkeypatch):
    path = tmp_path / "bench.json"

    def killed(size, args, device, rec):
        rec.done(f"{size}/train/default")
        throughput._raise_stop(15, None)  # what the SIGTERM handler main installs does

    monkeypatch.setattr(throughput, "size_figures", killed)
    with pytest.raises(SystemExit) as stop:
        throughput.main([*TINY, "--json", str(path)])
    report = json.loads(path.read_text())
    assert stop.value.code == 143 and report["stopped"] == "SIGTERM" and not report["finished"]
    assert report["done"] == ["16/train/default"]
