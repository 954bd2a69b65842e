# PROVEN: image data sets, multi-class classifiers, probabilistic certificates, their report.


rule images:
    params:
        config=digest("images"),
    output:
        digits=str(PATHS.image_dataset("digits")),
        signs=str(PATHS.image_dataset("signs")),
    log:
        log_file("images", "images"),
    benchmark:
        benchmark_file("images", "images")
    conda:
        ENV
    shell:
        stage("images") + " > {log} 2>&1"


rule train_classifier:
    params:
        config=digest("images"),
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
        config=digest("proven"),
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
        config=digest("proven", "certify"),
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
        config=digest("proven"),
    input:
        proven=expand(str(PATHS.proven("{model}")), model=PROVEN_MODELS),
        verified=expand(str(PATHS.proven_verified("{dataset}", "{cost}")), dataset=DATASETS, cost=COSTS),
    output:
        proven_report_files(),
    log:
        log_file("report_proven", "report_proven"),
    conda:
        ENV
    shell:
        stage("report_proven") + " > {log} 2>&1"
