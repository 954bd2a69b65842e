# Robustness of classifier ensembles against randomized attacks (MILP and SMT): the data of each
# benchmark instance, its classifiers, one job per benchmark row (every method of the tables),
# and the paper's report.


rule ensemble_data:
    params:
        config=config_digest("ensemble_data"),
    output:
        str(PATHS.ensemble_instance_data("{instance}")),
    log:
        log_file("ensemble_data", "{instance}"),
    benchmark:
        benchmark_file("ensemble_data", "{instance}")
    threads: 1
    conda:
        ENV
    shell:
        stage("ensemble_data") + " ensemble.instance={wildcards.instance} threads={threads} > {log} 2>&1"


rule ensemble_train:
    params:
        config=config_digest("ensemble_train"),
    input:
        str(PATHS.ensemble_instance_data("{instance}")),
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
        config=config_digest("ensemble_row"),
    input:
        data=ensemble_row_instance_data,
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
        config=config_digest("report_ensemble"),
    input:
        paper=paper_numbers_file("ensemble"),
        rows=expand(str(PATHS.ensemble_row("{row}")), row=sorted(ENSEMBLE_ROWS)),
    output:
        reported(report_files("ensemble"), "ensemble"),
    log:
        log_file("report_ensemble", "report_ensemble"),
    threads: 1
    conda:
        ENV
    shell:
        stage("report_ensemble") + " threads={threads} > {log} 2>&1"
