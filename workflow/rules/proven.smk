# PROVEN (probabilistic certificates from CROWN's linear bounds): image data sets, multi-class
# classifiers, worst-case and probabilistic certified radii, and the paper's report.


rule images:
    params:
        config=config_digest("images"),
    output:
        digits=str(PATHS.image_dataset("digits")),
        signs=str(PATHS.image_dataset("signs")),
    log:
        log_file("images", "images"),
    benchmark:
        benchmark_file("images", "images")
    threads: 1
    conda:
        ENV
    shell:
        stage("images") + " threads={threads} > {log} 2>&1"


rule train_classifier:
    params:
        config=config_digest("train_classifier"),
    input:
        data=lambda wildcards: str(PATHS.image_dataset(model_dataset(wildcards.model))),
    output:
        classifier_files("{model}"),
    log:
        log_file("train_classifier", "{model}"),
    benchmark:
        benchmark_file("train_classifier", "{model}")
    threads: 1
    conda:
        ENV
    shell:
        stage("train_classifier") + " proven.model={wildcards.model} threads={threads} > {log} 2>&1"


rule proven:
    params:
        config=config_digest("proven"),
    input:
        data=lambda wildcards: str(PATHS.image_dataset(model_dataset(wildcards.model))),
        model=classifier_files("{model}"),
    output:
        str(PATHS.proven("{model}")),
    log:
        log_file("proven", "{model}"),
    benchmark:
        benchmark_file("proven", "{model}")
    threads: 1
    conda:
        ENV
    shell:
        stage("proven") + " proven.model={wildcards.model} threads={threads} > {log} 2>&1"


rule proven_verified:
    params:
        config=config_digest("proven_verified"),
    input:
        data=str(PATHS.dataset("{dataset}")),
        model=model_files("{dataset}", "{cost}"),
    output:
        str(PATHS.proven_verified("{dataset}", "{cost}")),
    log:
        log_file("proven_verified", "{dataset}_c{cost}"),
    benchmark:
        benchmark_file("proven_verified")
    threads: 1
    conda:
        ENV
    shell:
        stage("proven_verified") + " dataset={wildcards.dataset} train.cost_fn={wildcards.cost} threads={threads}"
        " > {log} 2>&1"


rule report_proven:
    params:
        config=config_digest("report_proven"),
    input:
        paper=paper_numbers_file("proven"),
        proven=expand(str(PATHS.proven("{model}")), model=PROVEN_MODELS),
        verified=expand(str(PATHS.proven_verified("{dataset}", "{cost}")), dataset=DATASETS, cost=COSTS),
    output:
        reported(report_files("proven"), "proven"),
    log:
        log_file("report_proven", "report_proven"),
    threads: 1
    conda:
        ENV
    shell:
        stage("report_proven") + " threads={threads} > {log} 2>&1"
