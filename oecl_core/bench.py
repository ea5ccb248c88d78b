"""Deprecated: the old name of `python -m oecl_core.throughput` (renamed: "throughput" is this script and its views/s,
"timing" Snakemake's benchmark files). Kept while hints, docs and imports elsewhere still name it; it runs the same
script with the same arguments."""
import sys

from .throughput import main, synthetic_images  # noqa: F401 (old imports of oecl_core.bench)

if __name__ == "__main__":
    print("python -m oecl_core.bench is deprecated: run python -m oecl_core.throughput", file=sys.stderr)
    main()
