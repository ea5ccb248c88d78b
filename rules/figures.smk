# The paper's figures (config.yaml's `figures`) from the per-epoch logs and AUROCs of their runs (PDF and PNG).


rule figure:
    input:
        lambda wc: metrics_files([r for rs in FIGURE_RUNS[wc.name].values() for r in rs]),
    output:
        pdf="results/{preset}/figures/{name}.pdf",
        png=report("results/{preset}/figures/{name}.png", caption="../report/figure.rst", category="Figures",
                   subcategory="{name}", labels={"figure": "{name}"}),
    log:
        "results/{preset}/logs/figures/{name}.log",
    params:
        figure=lambda wc: FIGURES[wc.name],
        groups=lambda wc: {k: [r.folder(PRESET) for r in rs] for k, rs in FIGURE_RUNS[wc.name].items()},
    wildcard_constraints:
        name=one_of(FIGURES),
    localrule: True
    conda:
        "../environment.yml"
    script:
        "../workflow_scripts/figure.py"


for _name in FIGURES:

    rule:
        name:
            _name
        input:
            f"results/{PRESET}/figures/{_name}.pdf",
        localrule: True
