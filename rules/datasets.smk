# Download (where possible), verify and prepare each data set a run needs, on demand, on the local machine.
from oecl_core.data.catalog import prepare_arguments, prepare_inputs


rule prepare_dataset:
    input:
        # lists of class ids the preparer reads (imagenet1k_minus_30: the 30 ImageNet-30 wnids it leaves out)
        lambda wc: prepare_inputs(wc.name),
    output:
        f"{DATA_ROOT}/{{name}}/manifest.json",
    log:
        "results/logs/data/{name}.log",
    params:
        root=lambda wc, output: os.path.dirname(os.path.dirname(output[0])),
        # the preparer options the pipeline sets (imagenet1k_minus_30: exclude_wnids, the 30 wnids), on the command
        # line, which `snakemake -n -p` prints
        options=lambda wc: prepare_arguments(wc.name),
    localrule: True
    retries: 2
    conda:
        "../environment.yml"
    shell:
        "OECL_DATA={params.root} python -m oecl_core data prepare {wildcards.name}{params.options} > {log} 2>&1"
