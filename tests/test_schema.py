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
    assert "valid keys: " in problems[0] and meant in problems[0].split("valid keys: ")[1]
    with pytest.raises(ValueError, match="nothing was run"):
        check_config_keys(cfg, SCHEMA_PATH)
    with pytest.raises(Exception, match=repr(key)):  # the schema alone refuses it too
        validate(cfg, str(SCHEMA_PATH))


def test_free_form_objects_stay_open():
    """train_resources is keyed by preset name and a figure's settings by run settings (checked where planned)."""
    cfg = config()
    cfg["figures"]["fig2"]["settings"]["any_setting"] = 1
    assert unknown_keys(cfg, SCHEMA) == []


def test_every_top_level_key_is_described():
    for key, node in SCHEMA["properties"].items():
        assert node.get("description", "").strip(), f"schemas/config.schema.yaml: {key} has no description"


def test_the_schemas_preset_lists_are_config_presets():
    """The schema writes the presets once (&presets); its per-preset blocks and resources name the same ones."""
    from oecl_core.config import PRESETS

    presets = list(PRESETS)
    assert SCHEMA["properties"]["preset"]["enum"] == presets
    assert SCHEMA["properties"]["train_resources"]["required"] == presets
    assert SCHEMA["$defs"]["column"]["properties"]["run_in"]["items"]["enum"] == presets
    for kind in ("table", "figure"):
        assert list(SCHEMA["$defs"][kind]["properties"]) == presets, kind
    assert SCHEMA_PATH.read_text().count("[paper, official, smoke]") == 1  # the anchor, referred to elsewhere


def test_the_schemas_scores_are_scores_score_names():
    from oecl_core.scores import SCORE_NAMES

    assert sorted(SCHEMA["$defs"]["score"]["enum"]) == sorted(SCORE_NAMES)


def test_table_and_figure_names_agree_with_the_paper_reference_and_the_rules():
    """tableN / figN: config.yaml defines the names (the rules' wildcards take them from there), the schema checks
    their form, and the tables are the paper's, whose numbers oecl_core/reference holds (Table N -> numeral)."""
    import re

    from oecl_core.reference import load_paper_tables, roman

    cfg = config()
    for kind in ("tables", "figures"):
        pattern = SCHEMA["properties"][kind]["propertyNames"]["pattern"]
        assert cfg[kind] and all(re.search(pattern, name) for name in cfg[kind]), kind
        assert not re.search(pattern, kind[:-1] + "0") and not re.search(pattern, "x" + next(iter(cfg[kind])))
    assert {roman(name) for name in cfg["tables"]} == set(load_paper_tables()["table"])
    for smk in ("tables", "figures"):  # no closed list of names in the rules: the constraint is built from config.yaml
        text = (REPO / f"rules/{smk}.smk").read_text()
        assert f"name=one_of({smk.upper()})," in text and not re.search(r"(table|fig)\[", text), smk
