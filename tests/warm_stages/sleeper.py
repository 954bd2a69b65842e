"""Writes its pid to the file given as its argument, then sleeps until it is killed."""

import os
import sys
import time

if __name__ == "__main__":
    with open(sys.argv[1], "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(600)
