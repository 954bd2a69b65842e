rule baselines:
    input:
        str(PATHS.dataset("{dataset}")),
    output:
        str(PATHS.baselines("{dataset}")),
    log:
        log_file("baselines"),
    benchmark:
        benchmark_file("baselines", "{dataset}")
    conda:
        ENV
    shell:
        stage("baselines") + " dataset={wildcards.dataset} > {log} 2>&1"
