"""Search trial stage: one trial of the architecture search for one (data set, cost) pair (Sec. 4.2).

The pipeline runs one job per trial ``search.trial`` in ``0..min(search.n_trials, size of the
space) - 1``, in parallel, then the search stage selects the winner from their records. The trial
is the configuration the seeded draw of the whole search puts at that index, trained with seed
``search.seed + search.trial`` (:func:`nnassure.search.run_trial`), so it is the trial a single
:func:`~nnassure.search.run_search` would have trained. Its record (the row of the trials table
and the identity of the search) is written atomically as
``results/<experiment>/search/trials/<dataset>_c<cost>/<trial>.json``.

As in the search stage, ``model.*``, ``train.lr`` and ``train.weight_decay`` at anything but their
defaults are refused: the search chooses them (:func:`nnassure.config.check_searched_keys`).
"""

from __future__ import annotations

from omegaconf import DictConfig

from nnassure.config import check_searched_keys
from nnassure.config_errors import fail
from nnassure.data import load_dataset, split_arrays
from nnassure.io import write_json
from nnassure.paths import ExperimentPaths, format_cost
from nnassure.search import SearchSpace, run_trial, trial_row
from nnassure.stages._common import run_stage
from nnassure.tracking import tracked_run


def main(cfg: DictConfig) -> None:
    check_searched_keys(cfg, "in the search_trial stage")
    s = cfg.search
    space = SearchSpace.from_section(s)
    n_trials = min(s.n_trials, space.size())
    allowed = (f"an integer in 0..{n_trials - 1}, the trial this job runs (min(search.n_trials={s.n_trials}, "
               f"{space.size()} configurations of the space) = {n_trials} trials)")
    if s.trial is None or s.trial >= n_trials:
        fail("search.trial", s.trial, allowed)
    paths = ExperimentPaths.from_config(cfg)
    name, cost, trial = cfg.dataset.name, cfg.train.cost_fn, int(s.trial)
    frame = load_dataset(paths.dataset(name))
    x_train, y_train = split_arrays(frame, "train")
    x_val, y_val = split_arrays(frame, "val")
    with tracked_run(cfg, "search_trial", f"{name}_c{format_cost(cost)}/{trial}") as tracker:
        record = run_trial(x_train, y_train, x_val, y_val, space, s.n_trials, trial, cost, cfg.train.cost_fp,
                           max_epochs=s.max_epochs, patience=s.patience, seed=s.seed,
                           batch_size=cfg.train.batch_size)
        write_json(record, paths.search_trial(name, cost, trial))
        row = trial_row(record)
        tracker.log(row)
        tracker.summary({**row, **{f"search/{key}": value for key, value in record["search"].items()}})


if __name__ == "__main__":
    run_stage("search_trial", main)
