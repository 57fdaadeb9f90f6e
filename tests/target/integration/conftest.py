"""The Singer side of the integration tests: input files, the people stream, feeding the target.

``singer`` (a fixture, since test modules cannot import each other under
``--import-mode=importlib``) reads the fixed inputs in ``data/<test_module>__<what>.singer`` (one
JSON message a line), generates the people stream that many tests load into contact, and pipes
messages into the target in process (``TargetDynamics.listen``) or through the
``target-dynamics`` console script.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from target_dynamics.reporting import LoadFailed

if t.TYPE_CHECKING:
    from target_dynamics.target import TargetDynamics

DATA = Path(__file__).with_name("data")
TARGET_EXE = str(Path(sys.executable).with_name("target-dynamics"))


class Singer:
    """Singer messages for the tests, and the two ways of handing them to the target."""

    PEOPLE_SCHEMA: t.ClassVar[dict[str, t.Any]] = {
        "type": "SCHEMA",
        "stream": "people",
        "key_properties": ["emailaddress1"],
        "schema": {
            "properties": {"emailaddress1": {"type": "string"}, "lastname": {"type": "string"}}
        },
    }
    """The people stream: ``emailaddress1`` (its key) and ``lastname``, as contact names them."""

    QUIET: t.ClassVar[dict[str, str]] = {
        k: v for k, v in os.environ.items() if not k.endswith("LOGLEVEL")
    }
    """This environment without its ``*_LOGLEVEL`` overrides: the target logs at its default."""

    @staticmethod
    def read(name: str) -> list[dict[str, t.Any]]:
        """The messages in ``data/<name>.singer``."""
        text = (DATA / f"{name}.singer").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    @staticmethod
    def people(
        count: int,
        lastname: str = "L",
        *,
        every: int = 0,
        start: int = 0,
        last: bool = False,
        schema: bool = False,
    ) -> list[dict[str, t.Any]]:
        """People records ``p<i>@x.org`` / ``<lastname><i>``; a STATE ``{"pos": start + n}``
        after every ``every`` of them, and after the last one too when ``last`` is set; the
        people SCHEMA first when ``schema`` is set."""
        out: list[dict[str, t.Any]] = [Singer.PEOPLE_SCHEMA] if schema else []
        for i in range(count):
            record = {"emailaddress1": f"p{i}@x.org", "lastname": f"{lastname}{i}"}
            out.append({"type": "RECORD", "stream": "people", "record": record})
            if (every and (i + 1) % every == 0) or (last and i + 1 == count):
                out.append({"type": "STATE", "value": {"pos": start + i + 1}})
        return out

    @staticmethod
    def lines(messages: t.Iterable[dict[str, t.Any]] | str) -> str:
        """The messages as a tap writes them: one JSON document a line (text is kept as it is)."""
        if isinstance(messages, str):
            return messages
        return "".join(json.dumps(m) + "\n" for m in messages)

    @classmethod
    def listen(
        cls, target: TargetDynamics, messages: t.Iterable[dict[str, t.Any]] | str
    ) -> list[dict[str, t.Any]]:
        """Feed ``messages`` to the target in process; return what it printed (STATE messages)."""
        states, failure = cls.run(target, messages)
        if failure is not None:
            raise failure
        return states

    @classmethod
    def run(
        cls, target: TargetDynamics, messages: t.Iterable[dict[str, t.Any]] | str
    ) -> tuple[list[dict[str, t.Any]], LoadFailed | None]:
        """:meth:`listen` for a run that may fail: the STATE messages printed, and the
        :class:`LoadFailed` that ended the run, if one did."""
        out = io.StringIO()
        failure = None
        with contextlib.redirect_stdout(out):
            try:
                target.listen(io.StringIO(cls.lines(messages)))
            except LoadFailed as exc:
                failure = exc
        return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()], failure

    @classmethod
    def cli(
        cls,
        config: dict[str, t.Any] | Path | None,
        messages: t.Iterable[dict[str, t.Any]] | str | Path | t.BinaryIO,
        tmp_path: Path,
        *,
        args: t.Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``target-dynamics`` console script with ``config`` (settings, a config file
        used as it is, or ``None`` for no ``--config``) and ``args`` on ``messages``.

        A file, or an open binary stream such as a tap's stdout, is piped in as it is (bytes
        and all); output that is not UTF-8 is read with replacement characters.
        """
        command = [*cls._command(config, tmp_path), *args]
        options: dict[str, t.Any] = {
            "capture_output": True,
            "encoding": "utf-8",
            "errors": "replace",
            "timeout": 120,
            "env": env,
        }
        if isinstance(messages, io.IOBase):
            return subprocess.run(command, stdin=messages, check=False, **options)
        if isinstance(messages, Path):
            with messages.open("rb") as stdin:
                return subprocess.run(command, stdin=stdin, check=False, **options)
        return subprocess.run(command, input=cls.lines(messages), check=False, **options)

    @classmethod
    def start(
        cls, config: dict[str, t.Any], tmp_path: Path, *, stderr: int = subprocess.DEVNULL
    ) -> subprocess.Popen[str]:
        """Start the console script with ``config``, its stdin and stdout piped (text), for
        tests that stop it mid-run."""
        return subprocess.Popen(
            cls._command(config, tmp_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )

    @staticmethod
    def _command(config: dict[str, t.Any] | Path | None, tmp_path: Path) -> list[str]:
        if config is None:
            return [TARGET_EXE]
        if not isinstance(config, Path):
            path = tmp_path / "config.json"
            path.write_text(json.dumps(config), encoding="utf-8")
            config = path
        return [TARGET_EXE, "--config", str(config)]


@pytest.fixture(scope="session")
def singer() -> type[Singer]:
    """Singer input files, the people stream and the target's two entry points."""
    return Singer
