"""docker-compose.yml read the way Compose reads it, for the deploy tests (no Docker here).

YAML anchors and merge keys are resolved by the YAML parser, as Compose does; variable substitution
follows Compose's rules (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}``, ``$VAR``, and ``$$`` for a literal ``$``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
README = ROOT / "README.md"

_TOKEN = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(LookupError):
    """A ``${VAR:?error}`` or ``${VAR?error}`` whose variable is not set (``docker compose`` refuses)."""


@dataclass(frozen=True)
class Substitution:
    """One ``${...}`` in the file.

    Attributes:
        name: The variable.
        op: ``""``, ``"-"``, ``":-"``, ``"?"``, ``":?"``, ``"+"`` or ``":+"``.
        arg: The default, error message or alternative.
    """

    name: str
    op: str
    arg: str

    @property
    def required(self) -> bool:
        return self.op in ("?", ":?")


def load() -> dict[str, Any]:
    """The parsed compose file."""
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return compose


def services(compose: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Service name → definition."""
    found: dict[str, dict[str, Any]] = (compose or load())["services"]
    return found


def strings(node: Any) -> Iterator[str]:
    """Every string value in a parsed YAML tree (mapping keys excluded)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def substitutions(text: str) -> list[Substitution]:
    """The substitutions in ``text``."""
    found = []
    for match in _TOKEN.finditer(text):
        if match["name"]:
            found.append(Substitution(match["name"], match["op"] or "", match["arg"] or ""))
        elif match["bare"]:
            found.append(Substitution(match["bare"], "", ""))
    return found


def is_one_substitution(text: str) -> bool:
    """Whether ``text`` is exactly one ``${...}`` and nothing else."""
    match = _TOKEN.fullmatch(text)
    return match is not None and match["name"] is not None


def mask_substitutions(text: str, mark: str = "\x00") -> str:
    """``text`` with every substitution replaced by ``mark`` (and ``$$`` by ``$``)."""
    return _TOKEN.sub(lambda match: "$" if match[0] == "$$" else mark, text)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with its variables substituted from ``env``, as Compose does.

    Raises:
        MissingVariable: For a required variable that ``env`` lacks.
    """

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        value = env.get(name)
        present = value is not None and (value != "" or not op.startswith(":"))
        if op in ("-", ":-"):
            return value if present and value is not None else arg
        if op in ("?", ":?"):
            if not present or value is None:
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op in ("+", ":+"):
            return arg if present else ""
        return value or ""

    return _TOKEN.sub(one, text)


def environment(service: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """The environment Compose gives ``service``'s containers when the operator's is ``env``.

    A variable listed without a value is passed through from ``env`` when set there, else left out.
    """
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    resolved = {}
    for key, value in raw.items():
        if value is None:
            if key in env:
                resolved[key] = env[key]
        else:
            resolved[key] = interpolate(str(value), env)
    return resolved


@dataclass(frozen=True)
class Mount:
    """A ``volumes:`` entry of a service."""

    source: str
    target: str
    read_only: bool

    @property
    def named(self) -> bool:
        """A named volume (not a bind mount of a host path)."""
        return not self.source.startswith((".", "/", "~"))


def mounts(service: Mapping[str, Any]) -> list[Mount]:
    """The service's volume mounts (short and long syntax)."""
    found = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            source, target, *options = entry.split(":")
            found.append(Mount(source, target, "ro" in ",".join(options).split(",")))
        else:
            found.append(Mount(str(entry.get("source", "")), entry["target"], bool(entry.get("read_only"))))
    return found


def env_example_names() -> tuple[set[str], set[str]]:
    """Variables in deploy/.env.example: (assigned on uncommented lines, all mentioned as ``NAME=``)."""
    assigned, mentioned = set(), set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=", line.strip())
        if match:
            mentioned.add(match[2])
            if not match[1]:
                assigned.add(match[2])
    return assigned, mentioned


def operator_env() -> dict[str, str]:
    """The least an operator sets: every variable .env.example asks for, with a made-up value."""
    assigned, _ = env_example_names()
    return {name: f"test-{name.lower().replace('_', '-')}" for name in sorted(assigned)}
