"""Unknown configuration keys: named with the likely key and the valid ones (oecl_core/schema.py), and refused by the
schema itself (every object closed), so a typo never drops a setting silently."""
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from oecl_core.schema import check_config_keys, unknown_keys

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "schemas/config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())


def config(**table1_changes):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["tables"]["table1"].update(table1_changes)
    return cfg


def test_the_shipped_config_has_no_unknown_key():
    assert unknown_keys(config(), SCHEMA) == []
    validate(config(), str(SCHEMA_PATH))


@pytest.mark.parametrize("where, key, meant", [
    ("table", "seed", "seeds"), ("table", "smok", "smoke"), ("table", "clss", "classes"),
    ("block", "seed", "seeds"), ("row", "clss", "classes"), ("column", "runs", "run"), ("top", "preset_", "preset"),
    ("figure", "clss", "cls"),
])
def test_a_misspelt_key_is_named_with_the_likely_one_and_refused_by_the_schema(where, key, meant):
    cfg = config()
    target = {"table": cfg["tables"]["table1"], "block": cfg["tables"]["table1"]["smoke"],
              "row": cfg["tables"]["table1"]["rows"][0], "column": cfg["tables"]["table1"]["columns"][0],
              "top": cfg, "figure": cfg["figures"]["fig1"]}[where]
    target[key] = target.get(meant, 0)
    problems = unknown_keys(cfg, SCHEMA)
    assert len(problems) == 1 and f"unknown key {key!r} (did you mean {meant!r}?)" in problems[0]
    assert f"valid keys: " in problems[0] and meant in problems[0].split("valid keys: ")[1]
    with pytest.raises(ValueError, match="nothing was run"):
        check_config_keys(cfg, SCHEMA_PATH)
    with pytest.raises(Exception, match=repr(key)):  # the schema alone refuses it too
        validate(cfg, str(SCHEMA_PATH))


def test_free_form_objects_stay_open():
    """train_resources is keyed by preset name and a figure's settings by run settings (checked where planned)."""
    cfg = config()
    cfg["figures"]["fig2"]["settings"]["any_setting"] = 1
    assert unknown_keys(cfg, SCHEMA) == []
