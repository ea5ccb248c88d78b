# Every run's metrics.json -> one tidy table (one row per run x score function) and a summary.


rule aggregate_runs:
    input:
        metrics_files(all_runs()),
    output:
        auc="results/{preset}/aggregate/auc.csv",
        summary="results/{preset}/aggregate/summary.md",
    log:
        "results/{preset}/logs/aggregate.log",
    localrule: True
    conda:
        "../environment.yml"
    script:
        "../workflow_scripts/aggregate.py"


rule aggregate:
    input:
        f"results/{PRESET}/aggregate/auc.csv",
    localrule: True
