rule train:
    params:
        config=digest("train", "model"),
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
