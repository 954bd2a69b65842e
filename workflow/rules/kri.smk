# Key risk indicators (Schwerdtner et al.): the traffic-sign images, one model of the zoo per
# variant, one inference job per (model, scenario) storing logits (so adding a scenario runs only
# its own jobs), PROVEN's certified bounds where a scenario is certifiable, the merged risk tensor
# with the losses applied, and the report.


rule kri_data:
    params:
        config=config_digest("kri_data"),
    output:
        str(PATHS.kri_images),
    log:
        log_file("kri_data", "signs"),
    benchmark:
        benchmark_file("kri_data", "signs")
    threads: 1
    conda:
        ENV
    shell:
        stage("kri_data") + " threads={threads} > {log} 2>&1"


rule kri_train:
    params:
        config=kri_digest("kri_train"),
    input:
        str(PATHS.kri_images),
    output:
        kri_model_files("{variant}"),
    log:
        log_file("kri_train", "{variant}"),
    benchmark:
        benchmark_file("kri_train", "{variant}")
    threads: 1
    conda:
        ENV
    shell:
        stage("kri_train") + " kri.variant={wildcards.variant} threads={threads} > {log} 2>&1"


rule kri_infer:
    params:
        config=kri_digest("kri_infer"),
    input:
        data=str(PATHS.kri_images),
        model=kri_model_files("{variant}"),
    output:
        str(PATHS.kri_inference("{variant}", "{scenario}")),
    log:
        log_file("kri_infer", "{variant}/{scenario}"),
    benchmark:
        benchmark_file("kri_infer", "{variant}/{scenario}")
    threads: 1
    conda:
        ENV
    shell:
        stage("kri_infer") + " kri.variant={wildcards.variant} kri.scenario={wildcards.scenario}"
        " threads={threads} > {log} 2>&1"


rule kri_certify:
    params:
        config=kri_digest("kri_certify"),
    input:
        data=str(PATHS.kri_images),
        model=kri_model_files("{variant}"),
    output:
        str(PATHS.kri_certificate("{variant}", "{scenario}")),
    log:
        log_file("kri_certify", "{variant}/{scenario}"),
    benchmark:
        benchmark_file("kri_certify", "{variant}/{scenario}")
    threads: 1
    conda:
        ENV
    shell:
        stage("kri_certify") + " kri.variant={wildcards.variant} kri.scenario={wildcards.scenario}"
        " threads={threads} > {log} 2>&1"


rule kri_tensor:
    params:
        config=config_digest("kri_tensor"),
    input:
        data=str(PATHS.kri_images),
        # the merge checks each inference file against the digest of the model it was made with
        models=[f for variant in KRI_MODELS for f in kri_model_files(variant)],
        inferences=kri_inference_files(),
    output:
        str(PATHS.kri_tensor),
    log:
        log_file("kri_tensor", "tensor"),
    benchmark:
        benchmark_file("kri_tensor", "tensor")
    threads: 1
    conda:
        ENV
    shell:
        stage("kri_tensor") + " threads={threads} > {log} 2>&1"


rule report_kri:
    params:
        config=config_digest("report_kri"),
    input:
        paper=paper_numbers_file("kri"),
        models=[f for variant in KRI_MODELS for f in kri_model_files(variant)],
        tensor=str(PATHS.kri_tensor),
        certificates=kri_certificate_files(),
    output:
        reported(report_files("kri"), "kri"),
    log:
        log_file("report_kri", "report_kri"),
    threads: 1
    conda:
        ENV
    shell:
        stage("report_kri") + " threads={threads} > {log} 2>&1"
