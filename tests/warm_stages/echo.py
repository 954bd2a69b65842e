"""Prints its arguments, working directory and NNASSURE_TEST_VALUE; exits with the code given as exit=N."""

import os
import sys

if __name__ == "__main__":
    args = sys.argv[1:]
    print("argv", " ".join(args))
    print("cwd", os.getcwd())
    print("value", os.environ.get("NNASSURE_TEST_VALUE"))
    print("pid", os.getpid())
    print("to stderr", file=sys.stderr)
    codes = [int(a.split("=", 1)[1]) for a in args if a.startswith("exit=")]
    sys.exit(codes[0] if codes else 0)
