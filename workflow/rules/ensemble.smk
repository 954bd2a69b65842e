# Ensemble robustness (Gross et al.): classifiers per benchmark instance, one job per benchmark
# row (every method of the tables), and the report.


rule ensemble_train:
    params:
        config=digest("ensemble"),
    output:
        ensemble_classifier_stem_files("{instance}", "{index}"),
    log:
        log_file("ensemble_train", "{instance}_c{index}"),
    benchmark:
        benchmark_file("ensemble_train", "{instance}_c{index}")
    threads: 1
    conda:
        ENV
    shell:
        stage("ensemble_train") + " ensemble.instance={wildcards.instance} ensemble.classifier={wildcards.index}"
        " threads={threads} > {log} 2>&1"


rule ensemble_row:
    params:
        config=digest("ensemble"),
    input:
        classifiers=lambda wildcards: ensemble_classifier_files(int(wildcards.row)),
    output:
        result=str(PATHS.ensemble_row("{row}")),
        attacks=str(PATHS.ensemble_attacks("{row}")),
    log:
        log_file("ensemble_row", "{row}"),
    benchmark:
        benchmark_file("ensemble_row", "{row}")
    threads: 1
    conda:
        ENV
    shell:
        stage("ensemble_row") + " ensemble.row={wildcards.row} threads={threads} > {log} 2>&1"


rule report_ensemble:
    params:
        config=digest("ensemble"),
    input:
        expand(str(PATHS.ensemble_row("{row}")), row=sorted(ENSEMBLE_ROWS)),
    output:
        ensemble_report_files(),
    log:
        log_file("report_ensemble", "report_ensemble"),
    conda:
        ENV
    shell:
        stage("report_ensemble") + " > {log} 2>&1"
