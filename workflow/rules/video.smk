# Maximum safe radius of video clips w.r.t. their optical flow (Wu & Kwiatkowska): the synthetic
# clips and their Farneback flow, the CNN + LSTM on the flow, one job per analysed test clip (the
# upper bound, the A* and CROWN lower bounds, k manipulated flows, brightness), and the report.


rule video_data:
    params:
        config=config_digest("video_data"),
    output:
        str(PATHS.video_clips),
    log:
        log_file("video_data", "clips"),
    benchmark:
        benchmark_file("video_data", "clips")
    threads: 1
    conda:
        ENV
    shell:
        stage("video_data") + " threads={threads} > {log} 2>&1"


rule video_train:
    params:
        config=config_digest("video_train"),
    input:
        str(PATHS.video_clips),
    output:
        video_model_files(),
    log:
        log_file("video_train", "flow_lstm"),
    benchmark:
        benchmark_file("video_train", "flow_lstm")
    threads: 1
    conda:
        ENV
    shell:
        stage("video_train") + " threads={threads} > {log} 2>&1"


rule video_bounds:
    params:
        config=config_digest("video_bounds"),
    input:
        data=str(PATHS.video_clips),
        model=video_model_files(),
    output:
        bounds=str(PATHS.video_bounds("{clip}")),
        trace=str(PATHS.video_trace("{clip}")),
        flows=str(PATHS.video_flows("{clip}")),
    log:
        log_file("video_bounds", "{clip}"),
    benchmark:
        benchmark_file("video_bounds", "{clip}")
    threads: 1
    conda:
        ENV
    shell:
        stage("video_bounds") + " video.clip={wildcards.clip} threads={threads} > {log} 2>&1"


rule report_video:
    params:
        config=config_digest("report_video"),
    input:
        paper=paper_numbers_file("video"),
        model=video_model_files(),
        bounds=expand(str(PATHS.video_bounds("{clip}")), clip=VIDEO_CLIPS),
        traces=expand(str(PATHS.video_trace("{clip}")), clip=VIDEO_CLIPS),
        flows=expand(str(PATHS.video_flows("{clip}")), clip=VIDEO_CLIPS),
    output:
        reported(report_files("video"), "video"),
    log:
        log_file("report_video", "report_video"),
    threads: 1
    conda:
        ENV
    shell:
        stage("report_video") + " threads={threads} > {log} 2>&1"
