"""The planner (oecl_core/plan.py): the runs of a target are the Snakefile's jobs, each run's settings are its job's,
the image and view counts follow the engine's rules, and GPU-hours follow from a measured or a stated throughput."""
import collections
import json

import pytest
import torch

from oecl_core import plan
from oecl_core.cli import _config, build_parser, main
from oecl_core.config import resolve_config
from oecl_core.experiments import Run, run_config

from test_pipeline import REPO, planned_runs, repo_config, snakemake


def _planned(target, preset):
    groups = plan.target_groups(plan.load_pipeline_config(REPO / "config.yaml"), target, preset)
    return list(dict.fromkeys(r for runs in groups.values() for r in runs))


@pytest.mark.parametrize("preset,jobs", [("smoke", 50), ("paper", 2050)])
def test_planned_runs_are_the_snakemake_jobs(tmp_path, preset, jobs):
    out = snakemake(tmp_path, "-n", "table1", config=repo_config(preset=preset))
    assert out.returncode == 0, out.stderr[-2000:]
    dry_run = planned_runs(out.stdout + out.stderr)
    runs = _planned("table1", preset)
    assert len(runs) == sum(dry_run.values()) == jobs
    assert collections.Counter((r.dataset, r.method) for r in runs) == dry_run


def test_report_plans_every_table_and_figure_once(tmp_path):
    out = snakemake(tmp_path, "-n", "report", config=repo_config(preset="smoke"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(_planned("report", "smoke")) == sum(planned_runs(out.stdout + out.stderr).values())


@pytest.mark.parametrize("run", [Run("one_vs_rest", "cifar10", "oecl", 3, 1), Run("one_vs_rest", "digits", "csi", 0, 0),
                                 Run("few_shot~obtainable=0~shots=1", "raabin", "oecl", 0, 2),
                                 Run("unlabeled~anomaly=cifar100~oe=svhn~train_size=500", "cifar10", "oecl", 0, 0)])
def test_run_settings_are_what_the_training_job_resolves(run):
    args = build_parser().parse_args(["run", "--preset", "paper", "--dataset", run.dataset,
                                      "--benchmark", run.benchmark, "--method", run.method, "--cls", str(run.cls),
                                      "--seed", str(run.seed), "--out", "x"])
    assert run_config("paper", run) == _config(args)


def test_image_counts_follow_the_benchmarks_split_of_the_embedded_digits():
    from oecl_core.runner import split_for

    for benchmark, cls, settings in (("one_vs_rest", 3, {}), ("leave_one_out", 1, {}),
                                     ("one_vs_rest", 2, {"train_size": 50}),
                                     ("few_shot", -1, {"shots": 5, "oe": "benchmark"}),
                                     ("unlabeled", 0, {"anomaly": "digits", "oe": "sample_photos"})):
        cfg = resolve_config("smoke", "digits", "oecl", cls=cls, benchmark=benchmark, **settings)
        split = split_for(cfg)
        n_train, n_test, source = plan.split_sizes(cfg)
        assert (n_train, n_test, source) == (len(split.train), len(split.test), "loaded")


def test_known_sizes_give_one_vs_rest_and_leave_one_out_counts():
    cifar = resolve_config("paper", "cifar10", "oecl", cls=2)
    assert plan.split_sizes(cifar)[:2] == (5000, 10000)
    loo = resolve_config("paper", "cifar10", "oecl", cls=2, benchmark="leave_one_out")
    assert plan.split_sizes(loo)[:2] == (45000, 10000)


def test_views_per_step_are_the_methods_views():
    cfg = lambda method: resolve_config("paper", "cifar10", method)
    assert plan.views_per_step(cfg("simclr"), 256, 256, False) == 512
    assert plan.views_per_step(cfg("oecl"), 256, 256, True) == 1024  # 2 views of each ID and each OE image
    assert plan.views_per_step(cfg("self_oecl"), 256, 256, False) == 2048  # x {0, 90} in the pairs, {180, 270} as OE


def test_views_trained_and_gpu_hours_at_a_measured_throughput():
    cost = plan.run_cost(Run("one_vs_rest", "cifar10", "oecl", 0, 0), "paper")
    # CIFAR-10 class 0: 5,000 images, 19 steps of 256 + 256 images (1,024 views) per epoch, 500 epochs
    assert (cost.n_train, cost.steps_per_epoch, cost.views_per_step) == (5000, 19, 1024)
    assert cost.views_trained == 500 * 19 * 1024
    assert cost.views_scored == 10000 * 33 + 5000 + 1000 * 33  # test views, training bank, sim_s_mu reference
    rates = plan.rates({32: 20000.0})
    # the run's network is the benched ResNet-18, so its training takes views / (views per s)
    train_hours = cost.train_flops / rates[32].train / 3600
    assert train_hours == pytest.approx(cost.views_trained / 20000 / 3600)
    assert plan.gpu_hours(cost, rates) == pytest.approx(train_hours + cost.views_scored / 20000 / 3600 *
                                                        cost.score_flops_per_view / cost.train_flops_per_view)
    assert not rates[32].assumed and rates[224].assumed


def test_flops_counted_on_the_meta_device_are_those_of_a_real_forward():
    from torch.utils.flop_counter import FlopCounterMode

    from oecl_core.models import build_model

    train_fpv, forward_fpv = plan._flops_per_view("oecl", "cifar", 0.25, 32)
    model = build_model("cifar", 0.25).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(2, 3, 32, 32))
    assert forward_fpv == counter.get_total_flops() / 2
    assert 2.5 < train_fpv / forward_fpv < 3.5  # backward: about twice the forward


def test_bench_json_sets_the_rates_and_must_be_full_width(tmp_path):
    report = {"device": "NVIDIA H100 80GB HBM3", "width": 1.0,
              "sizes": {"32": {"train_views_per_s": 30000.0, "score_views_per_s": 90000.0}}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(report))
    rates = plan.rates(bench_json=str(path))
    train_fpv, score_fpv = plan._resnet18_flops(32)
    assert rates[32].train == 30000.0 * train_fpv and rates[32].score == 90000.0 * score_fpv
    assert "H100" in rates[32].source and rates[224].assumed
    path.write_text(json.dumps({**report, "width": 0.25}))
    with pytest.raises(ValueError, match="width 0.25"):
        plan.rates(bench_json=str(path))


def test_bad_targets_and_throughputs_are_refused(capsys):
    with pytest.raises(ValueError, match="unknown target 'table12'.*table1.*fig1.*report, all"):
        plan.target_groups(plan.load_pipeline_config(REPO / "config.yaml"), "table12", "paper")
    with pytest.raises(ValueError, match="--throughput-32 must be > 0"):
        plan.rates({32: 0.0})


def test_the_plan_command_prints_the_jobs_and_says_when_the_throughput_is_assumed(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["plan", "--preset", "smoke", "table1"]) == 0
    out = capsys.readouterr().out
    assert "table1 (preset smoke): 50 training jobs" in out and "ASSUMED 100 TFLOP/s" in out
    assert main(["plan", "--preset", "smoke", "table1", "--throughput-32", "5000"]) == 0
    out = capsys.readouterr().out
    assert "5000 training views/s" in out and "ASSUMED" in out  # 32 px measured; the 224-px rate stays assumed
