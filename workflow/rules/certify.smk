rule certify:
    params:
        config=digest("certify"),
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
