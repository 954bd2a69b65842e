# Maximum safe radius of video clips w.r.t. their optical flow (Wu & Kwiatkowska): the synthetic
# clips and their Farneback flow, the CNN + LSTM on the flow, one job per analysed test clip (the
# upper bound, the A* and CROWN lower bounds, k manipulated flows, brightness), and the report.


def _define_video_data(SITE):

    rule:
        name:
            SITE.rule_name("video_data")
        params:
            config=SITE.config_digest("video_data"),
        output:
            str(SITE.paths.video_clips),
        log:
            SITE.log_file("video_data", "clips"),
        benchmark:
            SITE.benchmark_file("video_data", "clips")
        threads: SITE.threads("video_data")
        resources:
            **SITE.resources("video_data"),
        conda:
            ENV
        shell:
            SITE.stage("video_data") + " threads={threads} > {log} 2>&1"


for _site in sites_running("video_data"):
    _define_video_data(_site)


def _define_video_train(SITE):

    rule:
        name:
            SITE.rule_name("video_train")
        params:
            config=SITE.config_digest("video_train"),
        input:
            str(SITE.paths.video_clips),
        output:
            SITE.video_model_files(),
        log:
            SITE.log_file("video_train", "flow_lstm"),
        benchmark:
            SITE.benchmark_file("video_train", "flow_lstm")
        threads: SITE.threads("video_train")
        resources:
            **SITE.resources("video_train"),
        conda:
            ENV
        shell:
            SITE.stage("video_train") + " threads={threads} > {log} 2>&1"


for _site in sites_running("video_train"):
    _define_video_train(_site)


def _define_video_bounds(SITE):

    rule:
        name:
            SITE.rule_name("video_bounds")
        params:
            config=SITE.config_digest("video_bounds"),
        input:
            data=str(SITE.paths.video_clips),
            model=SITE.video_model_files(),
        output:
            bounds=str(SITE.paths.video_bounds("{clip}")),
            trace=str(SITE.paths.video_trace("{clip}")),
            flows=str(SITE.paths.video_flows("{clip}")),
        log:
            SITE.log_file("video_bounds", "{clip}"),
        benchmark:
            SITE.benchmark_file("video_bounds", "{clip}")
        threads: SITE.threads("video_bounds")
        resources:
            **SITE.resources("video_bounds"),
        conda:
            ENV
        shell:
            SITE.stage("video_bounds") + " video.clip={wildcards.clip} threads={threads} > {log} 2>&1"


for _site in sites_running("video_bounds"):
    _define_video_bounds(_site)


def _define_report_video(SITE):

    rule:
        name:
            SITE.rule_name("report_video")
        params:
            config=SITE.config_digest("report_video"),
        input:
            paper=paper_numbers_file("video"),
            model=SITE.video_model_files(),
            bounds=expand(str(SITE.paths.video_bounds("{clip}")), clip=SITE.video_clips),
            traces=expand(str(SITE.paths.video_trace("{clip}")), clip=SITE.video_clips),
            flows=expand(str(SITE.paths.video_flows("{clip}")), clip=SITE.video_clips),
        output:
            reported(SITE.report_files("video"), "video"),
        log:
            SITE.log_file("report_video", "report_video"),
        benchmark:
            SITE.benchmark_file("report_video", "report_video")
        threads: SITE.threads("report_video")
        resources:
            **SITE.resources("report_video"),
        conda:
            ENV
        shell:
            SITE.stage("report_video") + " threads={threads} > {log} 2>&1"


for _site in sites_running("report_video"):
    _define_report_video(_site)
