"""Raises an exception: a traceback on stderr and exit status 1, as for `python -m`."""

if __name__ == "__main__":
    raise ValueError("a bug in a stage")
