"""Set-up and run, from a fresh clone with only Python 3.11+.

python3 tasks.py demo    # create .venv, install, stream the sample email list into the emulator
python3 tasks.py test    # create .venv, install (with meltano), lint, type-check, run the tests

``test`` passes any further arguments to pytest (``python3 tasks.py test -k readme``).
Every install step is skipped on later runs until what it depends on changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
TOOLS = ROOT / ".tools"
MELTANO_SPEC = "meltano==4.4.*"
TAPS = {"tap-spreadsheets": "tap-spreadsheets==1.1.2", "tap-jsonl": "tap-jsonl==0.3.1"}
"""Real taps from the package index, each in a venv of its own (they pin other singer-sdk versions).

tap-spreadsheets is the demo's CSV tap; tap-jsonl (JSONL with nested objects) is for tests only.
"""
PYTEST_NO_TESTS = 5


def _run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, env=env)


def _install(env_dir: Path, stamp: bytes, *pip_args: str) -> Path:
    """Create ``env_dir`` and ``pip install pip_args`` into it unless ``stamp`` is unchanged."""
    python = env_dir / "bin" / "python"
    if not python.exists():
        print(f"creating {env_dir.relative_to(ROOT)}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    marker = env_dir / ".installed"
    if marker.exists() and marker.read_bytes() == stamp:
        return env_dir / "bin"
    print(f"installing {' '.join(pip_args)} into {env_dir.relative_to(ROOT)}", flush=True)
    pip = (python, "-m", "pip", "--disable-pip-version-check")
    _run(*pip, "install", "-q", "--upgrade", "pip")
    _run(*pip, "install", "-q", *pip_args)
    marker.write_bytes(stamp)
    return env_dir / "bin"


def ensure_project() -> Path:
    """Install the project, the emulator extra and the ``dev`` group into ``.venv``.

    Dependency groups (PEP 735) need pip >= 25.1, which ``_install`` upgrades to first.
    """
    stamp = (ROOT / "pyproject.toml").read_bytes()
    return _install(VENV, stamp, "-e", f"{ROOT}[emulator]", "--group", "dev")


def ensure_tap(name: str) -> Path:
    """Install the tap ``name`` of ``TAPS`` into ``.tools/<name>``; return its ``bin``."""
    return _install(TOOLS / name, TAPS[name].encode(), TAPS[name])


def ensure_meltano(env: dict[str, str]) -> Path:
    """Install meltano into ``.tools/meltano`` and the project's plugins; return its ``bin``."""
    bin_dir = _install(TOOLS / "meltano", MELTANO_SPEC.encode(), MELTANO_SPEC)
    marker = ROOT / ".meltano" / ".installed"
    stamp = (ROOT / "meltano.yml").read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    if not marker.exists() or marker.read_bytes() != stamp:
        print("installing the meltano.yml plugins", flush=True)
        _run(bin_dir / "meltano", "install", env=env)
        marker.write_bytes(stamp)
    return bin_dir


def tool_env() -> dict[str, str]:
    """The environment tests and the demo run in: project tools on PATH, no telemetry."""
    env = dict(os.environ)
    path = [str(VENV / "bin"), str(TOOLS / "meltano" / "bin"), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(path)
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    for name in TAPS:  # TAP_SPREADSHEETS_BIN, TAP_JSONL_BIN
        env[f"{name.upper().replace('-', '_')}_BIN"] = str(TOOLS / name / "bin" / name)
    return env


def demo(args: list[str]) -> int:
    """Run the email-list demo against a local emulator."""
    ensure_project()
    ensure_tap("tap-spreadsheets")
    demo_cmd = [str(PY), str(ROOT / "scripts" / "demo.py"), *args]
    return subprocess.run(demo_cmd, check=False, cwd=ROOT, env=tool_env()).returncode


def test(args: list[str]) -> int:
    """Lint, check formatting, type-check and run the test suite (``args`` go to pytest)."""
    env = tool_env()
    ensure_project()
    for name in TAPS:
        ensure_tap(name)
    ensure_meltano(env)
    _run(PY, "-m", "ruff", "check", ROOT, env=env)
    _run(PY, "-m", "ruff", "format", "--check", ROOT, env=env)
    _run(PY, "-m", "mypy", env=env)  # the type gate: [tool.mypy] in pyproject.toml
    pytest = [str(PY), "-m", "pytest", "-n", "2", *(args or [str(ROOT / "tests")])]
    code = subprocess.run(pytest, check=False, cwd=ROOT, env=env).returncode
    if code == PYTEST_NO_TESTS:
        # A selection (-k, a path) that matches nothing is fine; a whole suite without tests is not.
        print("pytest collected no tests", file=sys.stderr)
        return 0 if args else 1
    return code


def main(argv: list[str]) -> int:
    """Dispatch ``demo`` or ``test``."""
    commands = {"demo": demo, "test": test}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    try:
        return commands[argv[0]](argv[1:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
