rule report:
    params:
        config=digest("report", "certify"),
    input:
        data=expand(str(PATHS.dataset("{dataset}")), dataset=DATASETS),
        baselines=expand(str(PATHS.baselines("{dataset}")), dataset=DATASETS),
        certifications=expand(str(PATHS.certification("{dataset}", "{cost}")), dataset=DATASETS, cost=COSTS),
    output:
        report_files(),
    log:
        log_file("report", "report"),
    conda:
        ENV
    shell:
        stage("report") + " > {log} 2>&1"
