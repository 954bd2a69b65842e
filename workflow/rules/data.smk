rule data:
    params:
        config=dataset_digest,
    output:
        str(PATHS.dataset("{dataset}")),
    log:
        log_file("data"),
    conda:
        ENV
    shell:
        stage("data") + " dataset={wildcards.dataset} > {log} 2>&1"
