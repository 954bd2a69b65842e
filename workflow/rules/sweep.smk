# Sweeps (nnassure.sweep; `--config sweep=conf/sweep/<name>.yaml`): the rule files above define
# every point's own jobs; this is the sweep's summary, one row per point with its keys and the
# headline numbers of each family the sweep changes, read from the points' reports.


# (Not with point=<name>: one point alone has no summary.)
if SWEEP and not ONLY_POINT:

    rule sweep_summary:
        input:
            plan=sweep_plan_file(),
            reports=[f for families in sweep_report_files().values() for files in families.values() for f in files],
        output:
            summary=str(PATHS.sweep_summary(SWEEP.name)),
            markdown=str(PATHS.sweep_summary(SWEEP.name).with_suffix(".md")),
        log:
            str(PATHS.sweep_root(SWEEP.name) / "logs" / "summary.log"),
        benchmark:
            str(PATHS.sweep_root(SWEEP.name) / "benchmarks" / "summary.tsv")
        threads: CFG.resources.sweep_summary.threads
        resources:
            mem_mb=CFG.resources.sweep_summary.mem_mb,
            runtime=CFG.resources.sweep_summary.runtime,
        conda:
            ENV
        shell:
            f"{SITES[0].stage('sweep_summary')} {shlex.quote(f'sweep.name={hydra_value(SWEEP.name)}')} > {{log}} 2>&1"
