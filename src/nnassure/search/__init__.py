"""Architecture search of Sec. 4.2."""

from nnassure.search.random_search import SearchResult, SearchSpace, run_search

__all__ = ["SearchResult", "SearchSpace", "run_search"]
