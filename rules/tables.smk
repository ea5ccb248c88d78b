# The paper's tables (config.yaml's `tables`), each from the metrics of its own runs (`table1` trains only Table I's).


rule table:
    input:
        lambda wc: metrics_files(TABLE_RUNS[wc.name]),
    output:
        # each file an item of Snakemake's report (snakemake --report), under Tables / tableN
        tex=table_report("results/{preset}/tables/{name}.tex", "LaTeX"),
        md=table_report("results/{preset}/tables/{name}.md", "Markdown"),
        csv=table_report("results/{preset}/tables/{name}.csv", "CSV"),
        runs=table_report("results/{preset}/tables/{name}_runs.csv", "runs (CSV)"),
    log:
        "results/{preset}/logs/tables/{name}.log",
    params:
        table=lambda wc: TABLES[wc.name],
    wildcard_constraints:
        name=one_of(TABLES),
    localrule: True
    conda:
        "../environment.yml"
    script:
        "../workflow_scripts/table.py"


for _name in TABLES:

    rule:
        name:
            _name
        input:
            f"results/{PRESET}/tables/{_name}.tex",
        localrule: True
