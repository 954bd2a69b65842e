"""Report stage for the video paper (Wu & Kwiatkowska): vd_table1 and vd_fig4, 5, 7, 8, 10, with a
``.compare.md`` beside the table and each figure the catalog gives one, from the per-clip results
of the video_bounds stage and the video model's metadata."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from nnassure.io import write_text
from nnassure.paths import ExperimentPaths
from nnassure.report import video as report
from nnassure.report.catalog import family_files
from nnassure.report.render import save_figure, write_table
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def video_outputs(cfg: DictConfig) -> list[Path]:
    """Every file this stage writes (the Snakefile's targets; ids and captions in report.catalog)."""
    return family_files(cfg, "video")


def main(cfg: DictConfig) -> None:
    v = cfg.video
    paths = ExperimentPaths.from_config(cfg)
    clips = list(range(int(v.clips)))
    norms = [str(n) for n in v.lirpa_norms]
    # Read everything first: a missing or broken input fails before any output is written.
    documents = report.load_bounds(paths, clips)
    report.check_classes(documents, list(v.motions), paths)
    traces = report.load_traces(paths, clips)
    arrays = {clip: report.load_flows(paths, clip) for clip in clips}
    metadata = report.load_model_metadata(paths.video_model_stem)
    bold = report.representative(documents)
    by_clip = {int(d["clip"]): d for d in documents}
    with tracked_run(cfg, "report_video", "report_video") as tracker:
        long, display = report.table1(documents, norms)
        write_table(long, display, paths.tables, "vd_table1")
        write_text(report.table1_compare(documents, long, metadata, int(v.upper_iterations),
                                         int(v.astar_iterations)), paths.tables / "vd_table1.compare.md")
        tracker.log_table("vd_table1", display.reset_index())

        save_figure(report.fig4(arrays[bold], bold, str(by_clip[bold]["true_class"])), paths.figures, "vd_fig4")
        chosen = report.fig5_clip(documents, {c: bool(a["has_adversarial"]) for c, a in arrays.items()})
        save_figure(report.fig5(arrays.get(chosen) if chosen is not None else None, by_clip.get(chosen)),
                    paths.figures, "vd_fig5")

        save_figure(report.fig7(traces, documents, norms), paths.figures, "vd_fig7")
        write_text(report.fig7_compare(traces, documents, str(v.norm)), paths.tables / "vd_fig7.compare.md")

        brightness = report.brightness_frame(documents)
        save_figure(report.fig8(arrays[bold], brightness, bold), paths.figures, "vd_fig8")
        write_text(report.fig8_compare(brightness, [float(d) for d in v.brightness]),
                   paths.tables / "vd_fig8.compare.md")

        manipulated = report.manipulated_frame(documents)
        save_figure(report.fig10(manipulated, traces, bold, [int(k) for k in v.manipulated_flows]), paths.figures,
                    "vd_fig10")
        write_text(report.fig10_compare(manipulated, int(v.astar_iterations)), paths.tables / "vd_fig10.compare.md")
    missing = [str(f) for f in video_outputs(cfg) if not f.exists()]
    if missing:
        raise RuntimeError(f"report_video did not write {missing}")


if __name__ == "__main__":
    run_stage("report_video", main)
