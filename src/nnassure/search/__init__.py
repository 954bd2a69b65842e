"""Architecture search of Sec. 4.2."""

from nnassure.search.random_search import (
    TRIAL_COLUMNS,
    SearchResult,
    SearchSpace,
    run_search,
    run_trial,
    search_candidates,
    search_identity,
    select_best,
    trial_row,
)

__all__ = ["TRIAL_COLUMNS", "SearchResult", "SearchSpace", "run_search", "run_trial", "search_candidates",
           "search_identity", "select_best", "trial_row"]
