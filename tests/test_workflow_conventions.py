"""The Snakemake catalog's conventions: lint-clean, one environment file naming pyproject's dependencies, a `.test/`
configuration (CI runs it whole), and a default profile that keeps going past a failed job."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_snakemake_lint_is_clean():
    out = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr


def _requirement(spec: str) -> tuple[str, str]:
    name, ranges = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", spec).groups()
    return name.lower().replace("_", "-"), ranges.replace(" ", "")


def test_environment_file_names_every_dependency_of_pyproject_with_its_range():
    """environment.yml is what `--use-conda` installs for every rule: pyproject's dependencies (runtime, tests, SLURM,
    CLIP) with the same ranges, so a rule's environment runs what an installed project runs."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = dict(_requirement(s) for s in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted.update(_requirement(s) for s in extra)
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda_names = {"pytorch": "torch", "snakemake-minimal": "snakemake"}  # conda-forge's names of two PyPI packages
    listed = {}
    for dep in env["dependencies"]:
        for spec in dep["pip"] if isinstance(dep, dict) else [dep]:
            assert not spec.startswith("-"), f"{spec}: a rule's environment (made in .snakemake/conda/) cannot take it"
            name, ranges = _requirement(spec)
            listed[conda_names.get(name, name)] = ranges
    missing = {name: r for name, r in wanted.items() if name not in listed}
    assert not missing, f"environment.yml lacks {missing}"
    differ = {name: (r, listed[name]) for name, r in wanted.items() if listed[name] != r}
    assert not differ, f"ranges differ (pyproject, environment.yml): {differ}"


def test_every_rule_that_runs_code_names_the_one_environment_file():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":")[0]
            if re.search(r"^    (shell|script):", block, re.M):
                assert re.search(r'^    conda:\n        "\.\./environment\.yml"', block, re.M), f"{smk.name}: {name}"


def test_test_configuration_is_a_whole_valid_config_that_plans_table1_on_digits():
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    assert config["preset"] == "smoke"
    dry_run = ["table1", "-n", "--forceall", "--cores", "2", "--directory", ".test",
               "--configfile", ".test/config/config.yaml"]
    out = subprocess.run([sys.executable, "-m", "snakemake", *dry_run], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout, re.M))
    assert jobs["train_run"] == "6" and jobs["table"] == "1", out.stdout  # 2 digits x 3 methods x 1 seed


def test_default_profile_keeps_going_and_is_loaded_without_being_named():
    profile = yaml.safe_load((REPO / "profiles/default/profile.yaml").read_text())
    assert profile["keep-going"] is True
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "table1", "--config", "preset=smoke"],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "Using workflow specific profile profiles/default" in out.stdout + out.stderr
