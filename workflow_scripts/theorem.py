"""Snakemake adapter: Theorem III.1 checked numerically (oecl_core.theorem).

Writes the grid check rows under all four readings of sigma and sigma_V (CSV; the `sigma_reading` and
`sigma_v_reading` columns tell them apart), and the figure under the reading that holds; the per-reading summary
goes to the log. The Monte Carlo size depends on the preset (oecl_core.theorem.PRESET_PAIRS)."""
import csv
import itertools
import json
import sys
from pathlib import Path

from oecl_core import theorem
from oecl_core.io import stderr_to_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with stderr_to_log(sm.log[0]):
    n_pairs = theorem.PRESET_PAIRS.get(sm.wildcards.preset, theorem.DEFAULT_PAIRS)
    readings = list(itertools.product(theorem.SIGMA_READINGS, theorem.SIGMA_V_READINGS))
    rows = theorem.check_grid(n_pairs=n_pairs, readings=readings)
    out = Path(sm.output.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    for line in theorem.summarize(rows):
        print(json.dumps(line), file=sys.stderr)
    theorem.plot_theorem(Path(sm.output.pdf).with_suffix(""), n_pairs=min(n_pairs, 100_000))
