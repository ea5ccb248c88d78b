# Download (where possible), verify and prepare each data set a run needs, on demand, on the local machine.


rule prepare_dataset:
    output:
        f"{DATA_ROOT}/{{name}}/manifest.json",
    log:
        "results/logs/data/{name}.log",
    params:
        root=lambda wc, output: os.path.dirname(os.path.dirname(output[0])),
    localrule: True
    retries: 2
    conda:
        "../environment.yml"
    shell:
        "OECL_DATA={params.root} python -m oecl_core data prepare {wildcards.name} > {log} 2>&1"
