# PROVEN (probabilistic certificates from CROWN's linear bounds): image data sets, multi-class
# classifiers, worst-case and probabilistic certified radii, and the paper's report.


def _define_images(SITE):

    rule:
        name:
            SITE.rule_name("images")
        params:
            config=SITE.config_digest("images"),
        output:
            digits=str(SITE.paths.image_dataset("digits")),
            signs=str(SITE.paths.image_dataset("signs")),
        log:
            SITE.log_file("images", "images"),
        benchmark:
            SITE.benchmark_file("images", "images")
        threads: SITE.threads("images")
        resources:
            **SITE.resources("images"),
        conda:
            ENV
        shell:
            SITE.stage("images") + " threads={threads} > {log} 2>&1"


for _site in sites_running("images"):
    _define_images(_site)


def _define_train_classifier(SITE):

    rule:
        name:
            SITE.rule_name("train_classifier")
        params:
            config=SITE.config_digest("train_classifier"),
        input:
            data=SITE.image_data_of_model(),
        output:
            SITE.classifier_files("{model}"),
        log:
            SITE.log_file("train_classifier", "{model}"),
        benchmark:
            SITE.benchmark_file("train_classifier", "{model}")
        threads: SITE.threads("train_classifier")
        resources:
            **SITE.resources("train_classifier"),
        conda:
            ENV
        shell:
            SITE.stage("train_classifier") + " proven.model={wildcards.model} threads={threads} > {log} 2>&1"


for _site in sites_running("train_classifier"):
    _define_train_classifier(_site)


def _define_proven(SITE):

    rule:
        name:
            SITE.rule_name("proven")
        params:
            config=SITE.config_digest("proven"),
        input:
            data=SITE.image_data_of_model(),
            model=SITE.classifier_files("{model}"),
        output:
            str(SITE.paths.proven("{model}")),
        log:
            SITE.log_file("proven", "{model}"),
        benchmark:
            SITE.benchmark_file("proven", "{model}")
        threads: SITE.threads("proven")
        resources:
            **SITE.resources("proven"),
        conda:
            ENV
        shell:
            SITE.stage("proven") + " proven.model={wildcards.model} threads={threads} > {log} 2>&1"


for _site in sites_running("proven"):
    _define_proven(_site)


def _define_proven_verified(SITE):

    rule:
        name:
            SITE.rule_name("proven_verified")
        params:
            config=SITE.config_digest("proven_verified"),
        input:
            data=str(SITE.paths.dataset("{dataset}")),
            model=SITE.model_files("{dataset}", "{cost}"),
        output:
            str(SITE.paths.proven_verified("{dataset}", "{cost}")),
        log:
            SITE.log_file("proven_verified", "{dataset}_c{cost}"),
        benchmark:
            SITE.benchmark_file("proven_verified")
        threads: SITE.threads("proven_verified")
        resources:
            **SITE.resources("proven_verified"),
        conda:
            ENV
        shell:
            SITE.stage("proven_verified") + " dataset={wildcards.dataset} train.cost_fn={wildcards.cost} threads={threads}"
            " > {log} 2>&1"


for _site in sites_running("proven_verified"):
    _define_proven_verified(_site)


def _define_report_proven(SITE):

    rule:
        name:
            SITE.rule_name("report_proven")
        params:
            config=SITE.config_digest("report_proven"),
        input:
            paper=paper_numbers_file("proven"),
            proven=expand(str(SITE.paths.proven("{model}")), model=SITE.proven_models),
            verified=expand(str(SITE.paths.proven_verified("{dataset}", "{cost}")), dataset=SITE.datasets, cost=SITE.costs),
        output:
            reported(SITE.report_files("proven"), "proven"),
        log:
            SITE.log_file("report_proven", "report_proven"),
        benchmark:
            SITE.benchmark_file("report_proven", "report_proven")
        threads: SITE.threads("report_proven")
        resources:
            **SITE.resources("report_proven"),
        conda:
            ENV
        shell:
            SITE.stage("report_proven") + " threads={threads} > {log} 2>&1"


for _site in sites_running("report_proven"):
    _define_report_proven(_site)
