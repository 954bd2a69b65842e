# Verified classification (the cost-weighted MLP paper): data sets A, B, C, baselines,
# architecture search, cost-weighted training, LiRPA certification and the paper's report.


rule data:
    params:
        config=config_digest("data"),
    output:
        str(PATHS.dataset("{dataset}")),
    log:
        log_file("data"),
    benchmark:
        benchmark_file("data", "{dataset}")
    threads: 1
    conda:
        ENV
    shell:
        stage("data") + " dataset={wildcards.dataset} > {log} 2>&1"


rule baselines:
    params:
        config=config_digest("baselines"),
    input:
        str(PATHS.dataset("{dataset}")),
    output:
        str(PATHS.baselines("{dataset}")),
    log:
        log_file("baselines"),
    benchmark:
        benchmark_file("baselines", "{dataset}")
    threads: 1
    conda:
        ENV
    shell:
        stage("baselines") + " dataset={wildcards.dataset} threads={threads} > {log} 2>&1"


rule search:
    params:
        config=config_digest("search"),
    input:
        str(PATHS.dataset("{dataset}")),
    output:
        best=str(PATHS.search("{dataset}", "{cost}")),
        trials=str(PATHS.search_trials("{dataset}", "{cost}")),
    log:
        log_file("search", "{dataset}_c{cost}"),
    benchmark:
        benchmark_file("search")
    threads: 1
    conda:
        ENV
    shell:
        stage("search") + " dataset={wildcards.dataset} train.cost_fn={wildcards.cost} threads={threads}"
        " > {log} 2>&1"


rule train:
    params:
        config=config_digest("train"),
    input:
        data=str(PATHS.dataset("{dataset}")),
        search=str(PATHS.search("{dataset}", "{cost}")),
    output:
        model_files("{dataset}", "{cost}"),
    log:
        log_file("train", "{dataset}_c{cost}"),
    benchmark:
        benchmark_file("train")
    threads: 1
    conda:
        ENV
    shell:
        stage("train") + " dataset={wildcards.dataset} train.cost_fn={wildcards.cost}"
        " train.hparams_file={input.search} threads={threads} > {log} 2>&1"


rule certify:
    params:
        config=config_digest("certify"),
    input:
        data=str(PATHS.dataset("{dataset}")),
        model=model_files("{dataset}", "{cost}"),
    output:
        samples=str(PATHS.certification("{dataset}", "{cost}")),
        summary=str(PATHS.certification_summary("{dataset}", "{cost}")),
    log:
        log_file("certify", "{dataset}_c{cost}"),
    benchmark:
        benchmark_file("certify")
    threads: 1
    conda:
        ENV
    shell:
        stage("certify") + " dataset={wildcards.dataset} train.cost_fn={wildcards.cost} threads={threads}"
        " > {log} 2>&1"


rule report:
    params:
        config=config_digest("report"),
    input:
        paper=paper_numbers_file("verified-classification"),
        data=expand(str(PATHS.dataset("{dataset}")), dataset=DATASETS),
        baselines=expand(str(PATHS.baselines("{dataset}")), dataset=DATASETS),
        certifications=expand(str(PATHS.certification("{dataset}", "{cost}")), dataset=DATASETS, cost=COSTS),
    output:
        reported(report_files("verified-classification"), "verified-classification"),
    log:
        log_file("report", "report"),
    threads: 1
    conda:
        ENV
    shell:
        stage("report") + " threads={threads} > {log} 2>&1"
