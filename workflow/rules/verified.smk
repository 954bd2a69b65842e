# Verified classification (the cost-weighted MLP paper): data sets A, B, C, baselines,
# architecture search, cost-weighted training, LiRPA certification and the paper's report.


def _define_data(SITE):

    rule:
        name:
            SITE.rule_name("data")
        params:
            config=SITE.config_digest("data"),
        output:
            str(SITE.paths.dataset("{dataset}")),
        log:
            SITE.log_file("data"),
        benchmark:
            SITE.benchmark_file("data", "{dataset}")
        threads: SITE.threads("data")
        resources:
            **SITE.resources("data"),
        conda:
            ENV
        shell:
            SITE.stage("data") + " dataset={wildcards.dataset} > {log} 2>&1"


for _site in sites_running("data"):
    _define_data(_site)


def _define_baselines(SITE):

    rule:
        name:
            SITE.rule_name("baselines")
        params:
            config=SITE.config_digest("baselines"),
        input:
            str(SITE.paths.dataset("{dataset}")),
        output:
            str(SITE.paths.baselines("{dataset}")),
        log:
            SITE.log_file("baselines"),
        benchmark:
            SITE.benchmark_file("baselines", "{dataset}")
        threads: SITE.threads("baselines")
        resources:
            **SITE.resources("baselines"),
        conda:
            ENV
        shell:
            SITE.stage("baselines") + " dataset={wildcards.dataset} threads={threads} > {log} 2>&1"


for _site in sites_running("baselines"):
    _define_baselines(_site)


# The architecture search (Sec. 4.2): one job per trial, so the trials run in parallel on a
# cluster, then the selection of the winner.
def _define_search_trial(SITE):

    rule:
        name:
            SITE.rule_name("search_trial")
        params:
            config=SITE.config_digest("search_trial"),
        input:
            str(SITE.paths.dataset("{dataset}")),
        output:
            str(SITE.paths.search_trial("{dataset}", "{cost}", "{trial}")),
        log:
            SITE.log_file("search_trial", "{dataset}_c{cost}/{trial}"),
        benchmark:
            SITE.benchmark_file("search_trial", "{dataset}_c{cost}/{trial}")
        threads: SITE.threads("search_trial")
        resources:
            **SITE.resources("search_trial"),
        conda:
            ENV
        shell:
            SITE.stage("search_trial") + " dataset={wildcards.dataset} train.cost_fn={wildcards.cost}"
            " search.trial={wildcards.trial} threads={threads} > {log} 2>&1"


for _site in sites_running("search_trial"):
    _define_search_trial(_site)


def _define_search(SITE):

    rule:
        name:
            SITE.rule_name("search")
        params:
            config=SITE.config_digest("search"),
        input:
            # the selection checks every trial was trained on this data set
            data=str(SITE.paths.dataset("{dataset}")),
            trials=SITE.search_trial_files(),
        output:
            best=str(SITE.paths.search("{dataset}", "{cost}")),
            trials=str(SITE.paths.search_trials("{dataset}", "{cost}")),
        log:
            SITE.log_file("search", "{dataset}_c{cost}"),
        benchmark:
            SITE.benchmark_file("search")
        threads: SITE.threads("search")
        resources:
            **SITE.resources("search"),
        conda:
            ENV
        shell:
            SITE.stage("search") + " dataset={wildcards.dataset} train.cost_fn={wildcards.cost} threads={threads}"
            " > {log} 2>&1"


for _site in sites_running("search"):
    _define_search(_site)


def _define_train(SITE):

    rule:
        name:
            SITE.rule_name("train")
        params:
            config=SITE.config_digest("train"),
        input:
            data=str(SITE.paths.dataset("{dataset}")),
            search=str(SITE.paths.search("{dataset}", "{cost}")),
        output:
            SITE.model_files("{dataset}", "{cost}"),
        log:
            SITE.log_file("train", "{dataset}_c{cost}"),
        benchmark:
            SITE.benchmark_file("train")
        threads: SITE.threads("train")
        resources:
            **SITE.resources("train"),
        conda:
            ENV
        shell:
            SITE.stage("train") + " dataset={wildcards.dataset} train.cost_fn={wildcards.cost}"
            " train.hparams_file={input.search} threads={threads} > {log} 2>&1"


for _site in sites_running("train"):
    _define_train(_site)


def _define_certify(SITE):

    rule:
        name:
            SITE.rule_name("certify")
        params:
            config=SITE.config_digest("certify"),
        input:
            data=str(SITE.paths.dataset("{dataset}")),
            model=SITE.model_files("{dataset}", "{cost}"),
        output:
            samples=str(SITE.paths.certification("{dataset}", "{cost}")),
            summary=str(SITE.paths.certification_summary("{dataset}", "{cost}")),
        log:
            SITE.log_file("certify", "{dataset}_c{cost}"),
        benchmark:
            SITE.benchmark_file("certify")
        threads: SITE.threads("certify")
        resources:
            **SITE.resources("certify"),
        conda:
            ENV
        shell:
            SITE.stage("certify") + " dataset={wildcards.dataset} train.cost_fn={wildcards.cost} threads={threads}"
            " > {log} 2>&1"


for _site in sites_running("certify"):
    _define_certify(_site)


def _define_report(SITE):

    rule:
        name:
            SITE.rule_name("report")
        params:
            config=SITE.config_digest("report"),
        input:
            paper=paper_numbers_file("verified-classification"),
            data=expand(str(SITE.paths.dataset("{dataset}")), dataset=SITE.datasets),
            baselines=expand(str(SITE.paths.baselines("{dataset}")), dataset=SITE.datasets),
            certifications=expand(str(SITE.paths.certification("{dataset}", "{cost}")), dataset=SITE.datasets, cost=SITE.costs),
        output:
            reported(SITE.report_files("verified-classification"), "verified-classification"),
        log:
            SITE.log_file("report", "report"),
        benchmark:
            SITE.benchmark_file("report", "report")
        threads: SITE.threads("report")
        resources:
            **SITE.resources("report"),
        conda:
            ENV
        shell:
            SITE.stage("report") + " threads={threads} > {log} 2>&1"


for _site in sites_running("report"):
    _define_report(_site)
