"""Unknown keys in the pipeline's configuration, found by walking its JSON schema (schemas/config.schema.yaml).

The schema closes every object, so Snakemake's `validate` refuses a misspelt key too, but its message names
neither the valid keys nor the likely one ("Unevaluated properties are not allowed ('seed' was unexpected)").
This check runs first and says, for every unknown key, where it is, what it probably meant and what is valid.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import yaml


def _resolve(node: dict, root: dict) -> dict:
    while "$ref" in node:  # only local references ("#/$defs/name") occur in our schema
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _properties(node: dict, root: dict) -> dict:
    """The properties an object node allows, its allOf members' included."""
    node = _resolve(node, root)
    props = {}
    for part in node.get("allOf", []):
        props.update(_properties(part, root))
    props.update(node.get("properties", {}))
    return props


def _closed(node: dict, root: dict) -> bool:
    node = _resolve(node, root)
    return node.get("additionalProperties") is False or node.get("unevaluatedProperties") is False or any(
        _closed(part, root) for part in node.get("allOf", []))


def unknown_keys(config, schema: dict) -> list[str]:
    """One message per key of `config` that the schema does not allow, e.g. "tables.table1: unknown key 'seed'
    (did you mean 'seeds'?); valid keys: ..."."""
    problems: list[str] = []

    def walk(value, node: dict, where: str):
        node = _resolve(node, schema)
        if isinstance(value, dict):
            props = _properties(node, schema)
            rest = node.get("additionalProperties")
            for key, item in value.items():
                here = f"{where}.{key}" if where else str(key)
                if key in props:
                    walk(item, props[key], here)
                elif isinstance(rest, dict):
                    walk(item, rest, here)
                elif _closed(node, schema):
                    close = difflib.get_close_matches(str(key), list(props), n=1)
                    problems.append(f"{where or 'the top level'}: unknown key {key!r}"
                                    + (f" (did you mean {close[0]!r}?)" if close else "")
                                    + f"; valid keys: {', '.join(sorted(props))}")
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            for i, item in enumerate(value):
                walk(item, node["items"], f"{where}[{i}]")

    walk(config, schema, "")
    return problems


def check_config_keys(config: dict, schema_path) -> None:
    """Raises ValueError listing every unknown key (before any job runs; nothing is written)."""
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    problems = unknown_keys(config, schema)
    if problems:
        raise ValueError("config: " + "\nconfig: ".join(problems)
                         + "\nFix the key in config.yaml (or in --config / --configfile); nothing was run.")
