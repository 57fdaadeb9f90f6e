"""The one way a benchmark script starts: ``run(main)`` under ``if __name__ == "__main__":``.

Each benchmark trusts the emulator's CA through its own settings, so ``REQUESTS_CA_BUNDLE`` is
dropped from the environment first: a bundle set there would replace that trust for ``requests``
(§1.6). An emulator that cannot start, or any of the benchmark's own ``errors``, ends
the run with one line naming the script, not a traceback.
"""

from __future__ import annotations

import os
import sys
import typing as t
from pathlib import Path

from dataverse_emulator.testing import EmulatorStartError

if t.TYPE_CHECKING:
    from collections.abc import Callable


def run(main: Callable[[], int | None], *errors: type[Exception]) -> t.NoReturn:
    """Run ``main`` and exit with what it returns (``None`` is 0).

    Args:
        main: The benchmark; it reads its own arguments.
        errors: Exceptions besides :class:`EmulatorStartError` that end the run with their
            message (exit 1).
    """
    caught: tuple[type[Exception], ...] = (EmulatorStartError, *errors)
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    try:
        code = main()
    except caught as exc:
        raise SystemExit(f"{Path(sys.argv[0]).name}: {exc}") from None
    sys.exit(code)
