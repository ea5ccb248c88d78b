# One page that puts every regenerated table (and figure) next to the paper's numbers. Beside it, Snakemake's own
# report (snakemake --report report.zip) holds the files marked report(...) here and in tables.smk, figures.smk and
# theorem.smk, with the captions in report/.

import shutil


# The committed ledger of runs verified at paper scale is an input, not an output, and Snakemake's report shows the
# outputs marked report(...): this copy is that item (and what report.md reads). A run block, one line: nothing to log.
rule verified_ledger:
    input:
        ledger=os.path.join(workflow.basedir, "results/verified/ledger.csv"),  # committed, beside the Snakefile
    output:
        ledger=report("results/{preset}/verified/ledger.csv", caption="../report/ledger.rst",
                      category="Verified at paper scale"),
    log:
        "results/{preset}/logs/verified_ledger.log",
    localrule: True
    run:
        shutil.copyfile(input.ledger, output.ledger)


rule write_report:
    input:
        tables=expand("results/{{preset}}/tables/{name}.md", name=list(TABLES)),
        figures=expand("results/{{preset}}/figures/{name}.png", name=list(FIGURES)),
        auc="results/{preset}/aggregate/auc.csv",
        theorem="results/{preset}/figures/theorem31.png",
        ledger="results/{preset}/verified/ledger.csv",
    output:
        report("results/{preset}/report.md", caption="../report/page.rst", category="Report page"),
    log:
        "results/{preset}/logs/report.log",
    localrule: True
    conda:
        "../environment.yml"
    script:
        "../workflow_scripts/report.py"


rule report:
    input:
        f"results/{PRESET}/report.md",
    localrule: True
