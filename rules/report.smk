# One page that puts every regenerated table (and figure) next to the paper's numbers.


rule write_report:
    input:
        tables=expand("results/{{preset}}/tables/{name}.md", name=list(TABLES)),
        figures=expand("results/{{preset}}/figures/{name}.png", name=list(FIGURES)),
        auc="results/{preset}/aggregate/auc.csv",
        theorem="results/{preset}/figures/theorem31.png",
        ledger=os.path.join(workflow.basedir, "results/verified/ledger.csv"),  # committed, beside the Snakefile
    output:
        "results/{preset}/report.md",
    log:
        "results/{preset}/logs/report.log",
    localrule: True
    script:
        "../workflow_scripts/report.py"


rule report:
    input:
        f"results/{PRESET}/report.md",
    localrule: True
