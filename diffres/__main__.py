"""``python -m diffres``: see :mod:`diffres.cli`."""

import os
import sys

from .cli import main


def _run() -> int:
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun rank has left its process group and written all it writes (rank 0 saves
        # atomically).  Exit without the interpreter's shutdown: there, gloo's and the data
        # loader's threads are torn down in an unspecified order, and 1 exit in about 25 died
        # with "terminate called without an active exception" (exit -6) after a good run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(_run())
