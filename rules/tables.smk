# Tables I-IX: each from the metrics of its own runs (so `table1` trains only what Table I needs).


rule table:
    input:
        lambda wc: metrics_files(TABLE_RUNS[wc.name]),
    output:
        tex="results/{preset}/tables/{name}.tex",
        md="results/{preset}/tables/{name}.md",
        csv="results/{preset}/tables/{name}.csv",
        runs="results/{preset}/tables/{name}_runs.csv",
    log:
        "results/{preset}/logs/tables/{name}.log",
    params:
        table=lambda wc: TABLES[wc.name],
    wildcard_constraints:
        name="table[1-9]",
    localrule: True
    script:
        "../workflow_scripts/table.py"


for _name in TABLES:

    rule:
        name:
            _name
        input:
            f"results/{PRESET}/tables/{_name}.tex",
        localrule: True
