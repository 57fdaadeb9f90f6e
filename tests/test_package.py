"""The package as a user installs it: wheel metadata, a clean install, the Hub definition.

Issue 10 item 5 (a real package) and item 7 (a Hub-ready plugin definition checked against
``--about``).
"""

from __future__ import annotations

import email
import importlib.util
import json
import subprocess
import sys
import tomllib
import typing as t
import venv
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import target_dynamics

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
HUB_FILE = ROOT / "plugin" / "target-dynamics.yml"
SERVER_STACK = ("uvicorn", "pyjwt", "cryptography", "orjson")
KINDS = {"string": "string", "integer": "integer", "number": "decimal", "boolean": "boolean"}
KINDS |= {"object": "object", "array": "array"}
SECRETS = {"client_secret", "certificate_private_key", "app_users"}
CREDENTIALS = {"client_secret", "certificate_private_key", "certificate_thumbprint"}


def about() -> dict[str, t.Any]:
    cli = Path(sys.executable).parent / "target-dynamics"
    out = subprocess.run(
        [str(cli), "--about", "--format=json"], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def requirement_names(requirements: list[str], extra: str | None = None) -> set[str]:
    """Names of the requirements that apply with ``extra`` (None: without any extra)."""
    found = set()
    for text in requirements:
        requirement = Requirement(text)
        marker = requirement.marker
        applies = (
            marker is None if extra is None else bool(marker and marker.evaluate({"extra": extra}))
        )
        if applies:
            found.add(requirement.name.lower())
    return found


# --- the Hub definition ------------------------------------------------------------------------


def test_hub_definition_is_generated_from_meltano_yml() -> None:
    spec = importlib.util.spec_from_file_location("hub", ROOT / "scripts" / "hub_definition.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert HUB_FILE.read_text(encoding="utf-8") == module.render(), (
        "plugin/target-dynamics.yml is stale: run .venv/bin/python scripts/hub_definition.py"
    )


def test_hub_definition_agrees_with_about() -> None:
    """Every setting in both, in order, same kinds and defaults; sensitive only for secrets;
    the credential is a secret or a certificate."""
    hub = yaml.safe_load(HUB_FILE.read_text(encoding="utf-8"))
    info = about()
    properties = info["settings"]["properties"]
    settings = {s["name"]: s for s in hub["settings"]}
    assert list(settings) == list(properties)
    for name, spec in properties.items():
        setting = settings[name]
        assert setting.get("sensitive", False) == (name in SECRETS), name
        assert bool(spec.get("secret")) == (name in SECRETS), name
        assert setting["kind"] not in {"password", "hidden"}, name
        allowed = [v for v in spec.get("enum", []) if v is not None]
        if allowed:
            assert setting["kind"] == "options", name
            assert [o["value"] for o in setting["options"]] == allowed, name
        else:
            assert setting["kind"] == KINDS[next(t for t in spec["type"] if t != "null")], name
        assert setting.get("value") == spec.get("default"), name
        assert setting.get("label"), name
        assert setting.get("description"), name
    assert set(hub["capabilities"]) <= set(info["capabilities"])
    assert set(info["capabilities"]) - set(hub["capabilities"]) <= {"validate-records"}
    required = set(info["settings"]["required"])
    groups = [set(group) for group in hub["settings_group_validation"]]
    assert all(required <= group <= set(settings) for group in groups)
    assert sorted(sorted(group & CREDENTIALS) for group in groups) == [
        ["certificate_private_key", "certificate_thumbprint"],
        ["client_secret"],
    ]


def test_hub_definition_installs_from_the_repository() -> None:
    hub = yaml.safe_load(HUB_FILE.read_text(encoding="utf-8"))
    urls = PYPROJECT["project"]["urls"]
    assert hub["repo"] == urls["Repository"] == urls["Homepage"]
    assert hub["pip_url"] == f"git+{urls['Repository']}.git"
    assert hub["executable"] in PYPROJECT["project"]["scripts"]
    assert hub["namespace"] == "target_dynamics"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert hub["pip_url"] in readme


# --- the wheel ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from it (``python -m build``, hatchling already here)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return out


def wheel_metadata(wheel: Path) -> tuple[email.message.Message, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(metadata)), names


@pytest.mark.slow
def test_wheel_metadata(built: Path) -> None:
    [wheel] = built.glob("*.whl")
    metadata, names = wheel_metadata(wheel)
    assert metadata["Version"] == target_dynamics.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    license_text = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    with zipfile.ZipFile(wheel) as archive:
        assert b"Apache License" in archive.read(license_text)
    assert "target-dynamics contributors" in metadata["Author"]
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Repository", "Issues", "Documentation"}
    requires = metadata.get_all("Requires-Dist")
    runtime = requirement_names(requires)
    assert runtime == {
        "singer-sdk",
        "msal",
        "requests",
        "certifi",
        "click",
        "msgspec",
        "typing-extensions",
    }
    emulator = requirement_names(requires, "emulator")
    assert set(SERVER_STACK) <= emulator
    assert metadata.get_all("Provides-Extra") == ["emulator"]
    assert any(c.startswith(("License", "Programming")) for c in metadata.get_all("Classifier"))
    [sdist] = built.glob("*.tar.gz")
    assert sdist.name == f"target_dynamics-{target_dynamics.__version__}.tar.gz"


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_runs(built: Path, tmp_path: Path) -> None:
    """Without the emulator extra: --about works, and dataverse-emulator says in one line how
    to install the extra (no traceback)."""
    [wheel] = built.glob("*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    for module in ("uvicorn", "httptools"):
        probe = [str(python), "-c", f"import {module}"]
        assert subprocess.run(probe, capture_output=True, check=False).returncode == 1, module

    info = subprocess.run(
        [str(env_dir / "bin" / "target-dynamics"), "--about", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(info.stdout)["version"] == target_dynamics.__version__

    emulator = subprocess.run(
        [str(env_dir / "bin" / "dataverse-emulator"), "--data-dir", str(tmp_path / "e")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert emulator.returncode == 1
    assert emulator.stdout == ""
    [line] = emulator.stderr.splitlines()
    assert line.startswith("dataverse-emulator needs the emulator extra (missing: ")
    assert line.endswith('pip install "target-dynamics[emulator]"')


def test_readme_capabilities_are_those_of_about() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Capabilities", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    listed = [line.split("`")[1] for line in table]
    assert listed == about()["capabilities"], "README Capabilities table: keep it to --about"
