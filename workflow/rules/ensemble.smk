# Robustness of classifier ensembles against randomized attacks (MILP and SMT): the data of each
# benchmark instance, its classifiers, one job per benchmark row (every method of the tables),
# and the paper's report.


def _define_ensemble_data(SITE):

    rule:
        name:
            SITE.rule_name("ensemble_data")
        params:
            config=SITE.config_digest("ensemble_data"),
        output:
            str(SITE.paths.ensemble_instance_data("{instance}")),
        log:
            SITE.log_file("ensemble_data", "{instance}"),
        benchmark:
            SITE.benchmark_file("ensemble_data", "{instance}")
        threads: SITE.threads("ensemble_data")
        resources:
            **SITE.resources("ensemble_data"),
        conda:
            ENV
        shell:
            SITE.stage("ensemble_data") + " ensemble.instance={wildcards.instance} threads={threads} > {log} 2>&1"


for _site in sites_running("ensemble_data"):
    _define_ensemble_data(_site)


def _define_ensemble_train(SITE):

    rule:
        name:
            SITE.rule_name("ensemble_train")
        params:
            config=SITE.config_digest("ensemble_train"),
        input:
            str(SITE.paths.ensemble_instance_data("{instance}")),
        output:
            SITE.ensemble_classifier_stem_files("{instance}", "{index}"),
        log:
            SITE.log_file("ensemble_train", "{instance}_c{index}"),
        benchmark:
            SITE.benchmark_file("ensemble_train", "{instance}_c{index}")
        threads: SITE.threads("ensemble_train")
        resources:
            **SITE.resources("ensemble_train"),
        conda:
            ENV
        shell:
            SITE.stage("ensemble_train") + " ensemble.instance={wildcards.instance} ensemble.classifier={wildcards.index}"
            " threads={threads} > {log} 2>&1"


for _site in sites_running("ensemble_train"):
    _define_ensemble_train(_site)


def _define_ensemble_row(SITE):

    rule:
        name:
            SITE.rule_name("ensemble_row")
        params:
            config=SITE.config_digest("ensemble_row"),
        input:
            data=SITE.ensemble_row_instance_data(),
            classifiers=SITE.ensemble_classifier_files(),
        output:
            result=str(SITE.paths.ensemble_row("{row}")),
            attacks=str(SITE.paths.ensemble_attacks("{row}")),
        log:
            SITE.log_file("ensemble_row", "{row}"),
        benchmark:
            SITE.benchmark_file("ensemble_row", "{row}")
        threads: SITE.threads("ensemble_row")
        resources:
            **SITE.resources("ensemble_row"),
        conda:
            ENV
        shell:
            SITE.stage("ensemble_row") + " ensemble.row={wildcards.row} threads={threads} > {log} 2>&1"


for _site in sites_running("ensemble_row"):
    _define_ensemble_row(_site)


def _define_report_ensemble(SITE):

    rule:
        name:
            SITE.rule_name("report_ensemble")
        params:
            config=SITE.config_digest("report_ensemble"),
        input:
            paper=paper_numbers_file("ensemble"),
            rows=expand(str(SITE.paths.ensemble_row("{row}")), row=sorted(SITE.ensemble_rows)),
        output:
            reported(SITE.report_files("ensemble"), "ensemble"),
        log:
            SITE.log_file("report_ensemble", "report_ensemble"),
        benchmark:
            SITE.benchmark_file("report_ensemble", "report_ensemble")
        threads: SITE.threads("report_ensemble")
        resources:
            **SITE.resources("report_ensemble"),
        conda:
            ENV
        shell:
            SITE.stage("report_ensemble") + " threads={threads} > {log} 2>&1"


for _site in sites_running("report_ensemble"):
    _define_report_ensemble(_site)
