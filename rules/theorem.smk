# Theorem III.1 checked numerically (oecl_core/theorem.py, docs/theorem.md): Monte Carlo E cos(X, Y) against
# bounds (5) and (6) on a grid, as a CSV of the check rows, and the figure (PDF and PNG). No training runs needed.


rule theorem_check:
    output:
        pdf="results/{preset}/figures/theorem31.pdf",
        png=report("results/{preset}/figures/theorem31.png", caption="../report/theorem.rst", category="Theorem III.1",
                   labels={"file": "figure"}),
        csv=report("results/{preset}/figures/theorem31.csv", caption="../report/theorem.rst", category="Theorem III.1",
                   labels={"file": "check rows (CSV)"}),
    log:
        "results/{preset}/logs/figures/theorem31.log",
    localrule: True
    conda:
        "../environment.yml"
    script:
        "../workflow_scripts/theorem.py"


rule theorem31:
    input:
        f"results/{PRESET}/figures/theorem31.pdf",
        f"results/{PRESET}/figures/theorem31.png",
        f"results/{PRESET}/figures/theorem31.csv",
    localrule: True
