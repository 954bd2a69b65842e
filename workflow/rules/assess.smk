# Assessing a model the pipeline did not train (nnassure.assess): import and check the user's
# model and data, clean accuracy, verified accuracy and certified radii, PROVEN's certificates, the
# KRI scenario components (RGB images), one job per VNN-LIB property, and the dependability report. Defined only when assess.model is set;
# the user's files are inputs, so replacing one reruns what reads it.


def _define_assess_import(SITE):

    rule:
        name:
            SITE.rule_name("assess_import")
        params:
            config=SITE.config_digest("assess_import"),
        input:
            SITE.assess_input_files(),
            [str(p) for p in SITE.assessment.properties.values()],
        output:
            str(SITE.paths.assess_manifest(SITE.assessment.name)),
        log:
            SITE.log_file("assess_import", SITE.assessment.name),
        benchmark:
            SITE.benchmark_file("assess_import", SITE.assessment.name)
        threads: SITE.threads("assess_import")
        resources:
            **SITE.resources("assess_import"),
        conda:
            ENV
        shell:
            SITE.stage("assess_import") + " threads={threads} > {log} 2>&1"


def _define_assess_accuracy(SITE):

    rule:
        name:
            SITE.rule_name("assess_accuracy")
        params:
            config=SITE.config_digest("assess_accuracy"),
        input:
            SITE.assess_input_files(),
            manifest=str(SITE.paths.assess_manifest(SITE.assessment.name)),
        output:
            summary=str(SITE.paths.assess_accuracy(SITE.assessment.name)),
            samples=str(SITE.paths.assess_accuracy(SITE.assessment.name).with_suffix(".parquet")),
        log:
            SITE.log_file("assess_accuracy", SITE.assessment.name),
        benchmark:
            SITE.benchmark_file("assess_accuracy", SITE.assessment.name)
        threads: SITE.threads("assess_accuracy")
        resources:
            **SITE.resources("assess_accuracy"),
        conda:
            ENV
        shell:
            SITE.stage("assess_accuracy") + " threads={threads} > {log} 2>&1"


def _define_assess_certify(SITE):

    rule:
        name:
            SITE.rule_name("assess_certify")
        params:
            config=SITE.config_digest("assess_certify"),
        input:
            SITE.assess_input_files(),
            manifest=str(SITE.paths.assess_manifest(SITE.assessment.name)),
        output:
            samples=str(SITE.paths.assess_certification(SITE.assessment.name)),
            summary=str(SITE.paths.assess_certification(SITE.assessment.name).with_name("certify_summary.csv")),
        log:
            SITE.log_file("assess_certify", SITE.assessment.name),
        benchmark:
            SITE.benchmark_file("assess_certify", SITE.assessment.name)
        threads: SITE.threads("assess_certify")
        resources:
            **SITE.resources("assess_certify"),
        conda:
            ENV
        shell:
            SITE.stage("assess_certify") + " threads={threads} > {log} 2>&1"


def _define_assess_proven(SITE):

    rule:
        name:
            SITE.rule_name("assess_proven")
        params:
            config=SITE.config_digest("assess_proven"),
        input:
            SITE.assess_input_files(),
            manifest=str(SITE.paths.assess_manifest(SITE.assessment.name)),
        output:
            str(SITE.paths.assess_proven(SITE.assessment.name)),
        log:
            SITE.log_file("assess_proven", SITE.assessment.name),
        benchmark:
            SITE.benchmark_file("assess_proven", SITE.assessment.name)
        threads: SITE.threads("assess_proven")
        resources:
            **SITE.resources("assess_proven"),
        conda:
            ENV
        shell:
            SITE.stage("assess_proven") + " threads={threads} > {log} 2>&1"


def _define_assess_kri(SITE):

    rule:
        name:
            SITE.rule_name("assess_kri")
        params:
            config=SITE.config_digest("assess_kri"),
        input:
            SITE.assess_input_files(),
            manifest=str(SITE.paths.assess_manifest(SITE.assessment.name)),
        output:
            str(SITE.paths.assess_kri(SITE.assessment.name)),
        log:
            SITE.log_file("assess_kri", SITE.assessment.name),
        benchmark:
            SITE.benchmark_file("assess_kri", SITE.assessment.name)
        threads: SITE.threads("assess_kri")
        resources:
            **SITE.resources("assess_kri"),
        conda:
            ENV
        shell:
            SITE.stage("assess_kri") + " threads={threads} > {log} 2>&1"


def _define_vnnlib(SITE):
    properties = SITE.assessment.properties

    rule:
        name:
            SITE.rule_name("vnnlib")
        params:
            config=SITE.config_digest("vnnlib"),
        input:
            SITE.assess_input_files(),
            manifest=str(SITE.paths.assess_manifest(SITE.assessment.name)),
            property=lambda wildcards: str(properties[wildcards.property]),
        output:
            result=str(SITE.paths.vnnlib_result(SITE.assessment.name, "{property}")),
            vnncomp=str(SITE.paths.vnnlib_result(SITE.assessment.name, "{property}").with_suffix(".txt")),
        log:
            SITE.log_file("vnnlib", f"{SITE.assessment.name}/{{property}}"),
        benchmark:
            SITE.benchmark_file("vnnlib", f"{SITE.assessment.name}/{{property}}")
        threads: SITE.threads("vnnlib")
        resources:
            **SITE.resources("vnnlib"),
        conda:
            ENV
        shell:
            SITE.stage("vnnlib") + " assess.property={wildcards.property} threads={threads} > {log} 2>&1"


def _define_report_assess(SITE):
    name = SITE.assessment.name

    rule:
        name:
            SITE.rule_name("report_assess")
        params:
            config=SITE.config_digest("report_assess"),
        input:
            manifest=str(SITE.paths.assess_manifest(name)),
            accuracy=str(SITE.paths.assess_accuracy(name)),
            certify=str(SITE.paths.assess_certification(name)),
            summary=str(SITE.paths.assess_certification(name).with_name("certify_summary.csv")),
            proven=str(SITE.paths.assess_proven(name)),
            kri=str(SITE.paths.assess_kri(name)),
            vnnlib=[str(SITE.paths.vnnlib_result(name, stem)) for stem in sorted(SITE.assessment.properties)],
        output:
            SITE.assess_report_files(),
        log:
            SITE.log_file("report_assess", name),
        benchmark:
            SITE.benchmark_file("report_assess", name)
        threads: SITE.threads("report_assess")
        resources:
            **SITE.resources("report_assess"),
        conda:
            ENV
        shell:
            SITE.stage("report_assess") + " threads={threads} > {log} 2>&1"


if ASSESSMENT is not None:
    for _site in sites_running("assess_import"):
        _define_assess_import(_site)
    for _site in sites_running("assess_accuracy"):
        _define_assess_accuracy(_site)
    for _site in sites_running("assess_certify"):
        _define_assess_certify(_site)
    for _site in sites_running("assess_proven"):
        _define_assess_proven(_site)
    for _site in sites_running("assess_kri"):
        _define_assess_kri(_site)
    for _site in sites_running("vnnlib"):
        _define_vnnlib(_site)
    for _site in sites_running("report_assess"):
        _define_report_assess(_site)
