# Key risk indicators (Schwerdtner et al.): the traffic-sign images, one model of the zoo per
# variant, one inference job per (model, scenario) storing logits (so adding a scenario runs only
# its own jobs), PROVEN's certified bounds where a scenario is certifiable, the merged risk tensor
# with the losses applied, and the report.


def _define_kri_data(SITE):

    rule:
        name:
            SITE.rule_name("kri_data")
        params:
            config=SITE.config_digest("kri_data"),
        output:
            str(SITE.paths.kri_images),
        log:
            SITE.log_file("kri_data", "signs"),
        benchmark:
            SITE.benchmark_file("kri_data", "signs")
        threads: SITE.threads("kri_data")
        resources:
            **SITE.resources("kri_data"),
        conda:
            ENV
        shell:
            SITE.stage("kri_data") + " threads={threads} > {log} 2>&1"


for _site in sites_running("kri_data"):
    _define_kri_data(_site)


def _define_kri_train(SITE):

    rule:
        name:
            SITE.rule_name("kri_train")
        params:
            config=SITE.kri_digest("kri_train"),
        input:
            str(SITE.paths.kri_images),
        output:
            SITE.kri_model_files("{variant}"),
        log:
            SITE.log_file("kri_train", "{variant}"),
        benchmark:
            SITE.benchmark_file("kri_train", "{variant}")
        threads: SITE.threads("kri_train")
        resources:
            **SITE.resources("kri_train"),
        conda:
            ENV
        shell:
            SITE.stage("kri_train") + " kri.variant={wildcards.variant} threads={threads} > {log} 2>&1"


for _site in sites_running("kri_train"):
    _define_kri_train(_site)


def _define_kri_infer(SITE):

    rule:
        name:
            SITE.rule_name("kri_infer")
        params:
            config=SITE.kri_digest("kri_infer"),
        input:
            data=str(SITE.paths.kri_images),
            model=SITE.kri_model_files("{variant}"),
        output:
            str(SITE.paths.kri_inference("{variant}", "{scenario}")),
        log:
            SITE.log_file("kri_infer", "{variant}/{scenario}"),
        benchmark:
            SITE.benchmark_file("kri_infer", "{variant}/{scenario}")
        threads: SITE.threads("kri_infer")
        resources:
            **SITE.resources("kri_infer"),
        conda:
            ENV
        shell:
            SITE.stage("kri_infer") + " kri.variant={wildcards.variant} kri.scenario={wildcards.scenario}"
            " threads={threads} > {log} 2>&1"


for _site in sites_running("kri_infer"):
    _define_kri_infer(_site)


def _define_kri_certify(SITE):

    rule:
        name:
            SITE.rule_name("kri_certify")
        params:
            config=SITE.kri_digest("kri_certify"),
        input:
            data=str(SITE.paths.kri_images),
            model=SITE.kri_model_files("{variant}"),
        output:
            str(SITE.paths.kri_certificate("{variant}", "{scenario}")),
        log:
            SITE.log_file("kri_certify", "{variant}/{scenario}"),
        benchmark:
            SITE.benchmark_file("kri_certify", "{variant}/{scenario}")
        threads: SITE.threads("kri_certify")
        resources:
            **SITE.resources("kri_certify"),
        conda:
            ENV
        shell:
            SITE.stage("kri_certify") + " kri.variant={wildcards.variant} kri.scenario={wildcards.scenario}"
            " threads={threads} > {log} 2>&1"


for _site in sites_running("kri_certify"):
    _define_kri_certify(_site)


def _define_kri_tensor(SITE):

    rule:
        name:
            SITE.rule_name("kri_tensor")
        params:
            config=SITE.config_digest("kri_tensor"),
        input:
            data=str(SITE.paths.kri_images),
            # the merge checks each inference file against the digest of the model it was made with
            models=[f for variant in SITE.kri_models for f in SITE.kri_model_files(variant)],
            inferences=SITE.kri_inference_files(),
        output:
            str(SITE.paths.kri_tensor),
        log:
            SITE.log_file("kri_tensor", "tensor"),
        benchmark:
            SITE.benchmark_file("kri_tensor", "tensor")
        threads: SITE.threads("kri_tensor")
        resources:
            **SITE.resources("kri_tensor"),
        conda:
            ENV
        shell:
            SITE.stage("kri_tensor") + " threads={threads} > {log} 2>&1"


for _site in sites_running("kri_tensor"):
    _define_kri_tensor(_site)


def _define_report_kri(SITE):

    rule:
        name:
            SITE.rule_name("report_kri")
        params:
            config=SITE.config_digest("report_kri"),
        input:
            paper=paper_numbers_file("kri"),
            models=[f for variant in SITE.kri_models for f in SITE.kri_model_files(variant)],
            tensor=str(SITE.paths.kri_tensor),
            certificates=SITE.kri_certificate_files(),
        output:
            reported(SITE.report_files("kri"), "kri"),
        log:
            SITE.log_file("report_kri", "report_kri"),
        benchmark:
            SITE.benchmark_file("report_kri", "report_kri")
        threads: SITE.threads("report_kri")
        resources:
            **SITE.resources("report_kri"),
        conda:
            ENV
        shell:
            SITE.stage("report_kri") + " threads={threads} > {log} 2>&1"


for _site in sites_running("report_kri"):
    _define_report_kri(_site)
