# Sweeps (nnassure.sweep; `--config sweep=conf/sweep/<name>.yaml`): the rule files above define
# every point's own jobs; this is the sweep's summary, one row per point with its keys and the
# headline numbers of each family the sweep changes, read from the points' reports.


def sweep_report_files():
    """Per point, the report files of every family the sweep changes (at the point's root where it
    runs the report itself, else the experiment's)."""
    return {site.point.name: {family: site.report_files(family) for family in SWEEP_FAMILIES}
            for site in SITES if site.point is not None}


def sweep_plan_file():
    """The sweep's plan, what its summary stage reads: written when it changed, atomically (like the
    caption files, it is a source of the summary job, so a changed plan reruns it)."""
    path = PATHS.sweep_plan(SWEEP.name)
    reports = sweep_report_files()
    document = {
        "sweep": SWEEP.name, "file": str(SWEEP.path), "keys": list(SWEEP.keys),
        "families": SWEEP_FAMILIES,
        "points": [{"name": p.point.name, "values": p.point.values, "overrides": p.point.overrides(),
                    "own": sorted(p.own), "reports": reports[p.point.name]} for p in POINTS],
    }
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(f".{os.getpid()}.tmp")
        staged.write_text(text)
        staged.replace(path)
    return str(path)


if SWEEP:
    # The families whose report some point runs itself; the others are the experiment's, unchanged.
    SWEEP_FAMILIES = [f for f in catalog.FAMILIES if any(REPORT_STAGES[f] in p.own for p in POINTS)]

    rule sweep_summary:
        input:
            plan=sweep_plan_file(),
            reports=[f for families in sweep_report_files().values() for files in families.values() for f in files],
        output:
            summary=str(PATHS.sweep_summary(SWEEP.name)),
            markdown=str(PATHS.sweep_summary(SWEEP.name).with_suffix(".md")),
        log:
            str(PATHS.sweep_root(SWEEP.name) / "summary.log"),
        benchmark:
            str(PATHS.sweep_root(SWEEP.name) / "summary.tsv")
        threads: CFG.resources.sweep_summary.threads
        resources:
            mem_mb=CFG.resources.sweep_summary.mem_mb,
            runtime=CFG.resources.sweep_summary.runtime,
        conda:
            ENV
        shell:
            SITES[0].stage("sweep_summary") + " " + shlex.quote(f"sweep.name={hydra_value(SWEEP.name)}")
            + " > {log} 2>&1"
