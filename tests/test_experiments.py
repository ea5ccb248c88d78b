"""The planner's facts about one run, each from one home: the data sets it reads (run_inputs, from its resolved
RunConfig), its folder (RUN_FOLDER) and its settings (run_config, shared with the CLI)."""
import pytest

from oecl_core.config import DATASET_OE
from oecl_core.experiments import RUN_FOLDER, Run, benchmark_spec, parse_benchmark_spec, run_config, run_inputs
from oecl_core.tables import planned_oe


@pytest.mark.parametrize("preset, run, reads, to_prepare", [
    # few-shot: the OE is the benchmark's own images of the obtainable class, so no ImageNet-22k
    ("paper", Run("few_shot~shots=1", "raabin", "oecl", -1, 0), ("raabin",), ("raabin",)),
    ("paper", Run("few_shot~obtainable=0", "ham10000", "bce", -1, 3), ("ham10000",), ("ham10000",)),
    # the data set's default OE, and the preset's own (the public code's ImageNet-30 OE)
    ("paper", Run("one_vs_rest", "imagenet30", "oecl", 0, 0), ("imagenet30", "imagenet22k_minus_1k"),
     ("imagenet30", "imagenet22k_minus_1k")),
    ("official", Run("one_vs_rest", "imagenet30", "oecl", 0, 0), ("imagenet30", "imagenet1k_minus_30"),
     ("imagenet30", "imagenet1k_minus_30")),
    # the spec's OE and anomaly sets; a method without OE reads none
    ("paper", Run("unlabeled~anomaly=cifar100~oe=svhn", "cifar10", "oecl", 0, 0), ("cifar10", "svhn", "cifar100"),
     ("cifar10", "svhn", "cifar100")),
    ("paper", Run("unlabeled~anomaly=cifar100", "cifar10", "simclr", 0, 0), ("cifar10", "cifar100"),
     ("cifar10", "cifar100")),
    ("paper", Run("one_vs_rest", "dior", "self_oecl", 0, 0), ("dior",), ("dior",)),
    # the embedded digits and the sample-photo OE need no preparation
    ("smoke", Run("one_vs_rest~oe=sample_photos", "digits", "oecl", 0, 0), ("digits", "sample_photos"), ()),
])
def test_run_inputs_are_the_data_sets_the_resolved_run_reads(preset, run, reads, to_prepare):
    inputs = run_inputs(preset, run)
    assert inputs.names == reads and inputs.to_prepare == to_prepare
    cfg = run_config(preset, run)  # the settings the training job resolves: the same OE
    assert inputs.oe == ("" if cfg.oe in ("none", "benchmark") else cfg.oe)


def test_planned_oe_of_a_table_row_is_the_resolved_runs():
    assert ("official", "imagenet30") in DATASET_OE
    assert planned_oe("official", "imagenet30", "one_vs_rest", "oecl") == "imagenet1k_minus_30"
    assert planned_oe("paper", "imagenet30", "one_vs_rest", "oecl") == "imagenet22k_minus_1k"
    assert planned_oe("paper", "raabin", "few_shot~shots=1", "oecl") == "benchmark"
    assert planned_oe("paper", "cifar10", "one_vs_rest~oe=svhn", "oecl") == "svhn"
    assert planned_oe("paper", "cifar10", "one_vs_rest~oe=svhn", "simclr") == "none"
    assert planned_oe("paper", "cifar10", "one_vs_rest", "dn2") == "none"  # quoted only: not implemented here


def test_run_folder_is_the_one_template():
    run = Run("one_vs_rest~oe=svhn", "cifar10", "oecl", 3, 1)
    assert run.relative_folder == RUN_FOLDER.format(benchmark=run.benchmark, dataset="cifar10", method="oecl", cls=3,
                                                    seed=1)
    assert run.folder("paper") == "results/paper/runs/one_vs_rest~oe=svhn/cifar10/oecl/3/seed1"


def test_run_config_applies_spec_then_overrides_and_labels_variants():
    cfg = run_config("smoke", Run("one_vs_rest~epochs=3~oe=sample_photos", "digits", "oecl", 2, 5), epochs=4, oe=None)
    assert (cfg.epochs, cfg.oe, cfg.cls, cfg.seed, cfg.benchmark) == (4, "sample_photos", 2, 5, "one_vs_rest")
    assert cfg.label == "one_vs_rest~epochs=3~oe=sample_photos"
    assert run_config("smoke", Run("one_vs_rest", "digits", "oecl", 0, 0)).label == ""


def test_benchmark_spec_settings_are_typed_and_round_trip():
    spec = benchmark_spec("one_vs_rest", lr_milestones=(10, 15), s_mu_clean_view=True, lr=0.5)
    assert parse_benchmark_spec(spec) == ("one_vs_rest",
                                          {"lr_milestones": (10, 15), "s_mu_clean_view": True, "lr": 0.5})
    with pytest.raises(ValueError, match="takes true or false"):
        parse_benchmark_spec("one_vs_rest~oe_resample=maybe")
    with pytest.raises(ValueError, match="key among"):
        parse_benchmark_spec("one_vs_rest~seed=1")
