"""The lock files agree with pyproject.toml, and tests touch only public APIs of libraries."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
OWN = {"__future__", "threadtune", "bot", "curation", "training", "serving", "tests", "bench", "examples"}


def read_lock(path: Path) -> dict[str, Version]:
    """``name==version`` lines of a pip-compile lock, keyed by canonical name."""
    pins: dict[str, Version] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        assert match, f"{path.name}: not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def declared(extras: tuple[str, ...] = ("test",)) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def disagreements(reqs: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """Every requirement missing from the lock or pinned outside its declared range."""
    problems = []
    for req in reqs:
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name} is declared in pyproject.toml but missing from the lock")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{req.name}=={pin} in the lock is outside pyproject.toml's {req.specifier}")
    return problems


def test_main_lock_pins_every_declared_requirement_inside_its_range():
    assert disagreements(declared(), read_lock(ROOT / "requirements" / "main.lock")) == []


def test_lock_pins_the_cpu_torch_the_setup_installs_first():
    pins = read_lock(ROOT / "requirements" / "main.lock")
    assert pins["torch"] == Version("2.13.0+cpu")
    assert not [name for name in pins if name.startswith("nvidia-")], "a CUDA build crept into the lock"


def test_a_disagreeing_lock_is_caught():
    reqs = [Requirement("transformers>=5.0,<5.25"), Requirement("trl>=1.0")]
    problems = disagreements(reqs, {"transformers": Version("5.25.0")})
    assert problems == [
        "transformers==5.25.0 in the lock is outside pyproject.toml's <5.25,>=5.0",
        "trl is declared in pyproject.toml but missing from the lock",
    ]


def test_libraries_with_moving_behaviour_have_upper_bounds():
    bounded = {"transformers", "trl", "peft", "slack-bolt", "slack-sdk", "sqlite-utils"}
    for req in declared(()):
        if canonicalize_name(req.name) in bounded:
            assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), req


def _third_party(module: str) -> bool:
    return module.split(".")[0] not in OWN


def private_reaches(source: str) -> list[str]:
    """Imports of private names or private modules of third-party packages, and attribute
    reaches (``lib._name``) through a name bound by such an import."""
    tree = ast.parse(source)
    found: list[str] = []
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _third_party(alias.name):
                    if any(p.startswith("_") for p in alias.name.split(".")):
                        found.append(f"import {alias.name}")
                    bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not _third_party(node.module):
                continue
            if any(p.startswith("_") for p in node.module.split(".")):
                found.append(f"from {node.module} import …")
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"from {node.module} import {alias.name}")
                bound.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_private_reach_detector_finds_each_form():
    source = (
        "from transformers.cli.serving.model_manager import _helper\n"
        "import slack_bolt._private\n"
        "import openai\n"
        "openai._client\n"
        "from tests.fakes import _mine\n"
    )
    assert private_reaches(source) == [
        "from transformers.cli.serving.model_manager import _helper",
        "import slack_bolt._private",
        "openai._client",
    ]


@pytest.mark.parametrize(
    "path",
    sorted(
        p.relative_to(ROOT).as_posix()
        for d in ("tests", "bench", "bot", "curation", "training", "serving", "threadtune")
        for p in (ROOT / d).rglob("*.py")
    ),
)
def test_no_module_reaches_into_a_librarys_private_names(path):
    assert private_reaches((ROOT / path).read_text()) == []
