"""The ``wassh`` command's entry point.

``wassh cc`` is called hundreds of times by a configure script or a makefile:
it starts here without importing the ``wassh`` package, which loads the host
(wasmtime's bindings, ~150 ms) and is what every other command needs.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    if sys.argv[1:2] == ["cc"]:
        from _wassh_cc import main as cc_main

        status = cc_main(sys.argv[2:])
        # Nothing to tear down but the interpreter: a few ms of every compile.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    from wassh.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
