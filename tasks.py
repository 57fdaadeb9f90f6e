"""Set-up and run, from a fresh clone with only Python 3.11+.

python3 tasks.py demo    # create .venv, install, run the email-list demo against the emulator
python3 tasks.py test    # create .venv, install, lint, run the whole test suite
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"


def ensure_venv() -> None:
    """Create .venv and install the project with its test extra, once."""
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    marker = VENV / ".installed"
    stamp = (ROOT / "pyproject.toml").read_bytes()
    if not marker.exists() or marker.read_bytes() != stamp:
        subprocess.run([PY, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([PY, "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]"], check=True)
        marker.write_bytes(stamp)


def test() -> int:
    """Lint, check formatting and run the test suite."""
    ensure_venv()
    subprocess.run([PY, "-m", "ruff", "check", str(ROOT)], check=True)
    subprocess.run([PY, "-m", "ruff", "format", "--check", str(ROOT)], check=True)
    tests = [PY, "-m", "pytest", "-n", "2", str(ROOT / "tests")]
    return subprocess.run(tests, check=False).returncode


def main(argv: list[str]) -> int:
    """Dispatch ``demo`` or ``test``."""
    commands = {"test": test}
    if len(argv) != 1 or argv[0] not in commands:
        print(__doc__)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
