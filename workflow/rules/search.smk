rule search:
    params:
        config=digest("search", "model", "train"),
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
