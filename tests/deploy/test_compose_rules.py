"""The compose stack's rules, checked on docker-compose.yml itself (no Docker engine needed).

Issue 13: pinned images, no ``auto-setup``, ports on 127.0.0.1 only, no secret in the file, every
service the docs name exists, a worker that restarts and reports readiness, a keyless default, and
the catalogue migrated by a one-shot before the worker and the API start.
"""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import urlsplit

import pytest
from compose_file import (
    DOCKERFILE,
    OPERATIONS_DOC,
    README,
    ROOT,
    env_example_names,
    environment,
    interpolate,
    is_one_substitution,
    load,
    mask_substitutions,
    mounts,
    operator_env,
    services,
    strings,
    substitutions,
)

from sora_temporal import search_attributes

# A pinned tag names at least major.minor: `postgres:16` or `latest` would move under us.
PINNED_TAG = re.compile(r"^v?\d+\.\d+")
SECRET_NAME = re.compile(r"(PASSWORD|PWD|SECRET|TOKEN|KEYS?)$")
# The simulator accepts any non-empty key; this default is a placeholder, not a secret.
PLACEHOLDER_SECRETS = {"", "sk-sim-local"}
KEY_NAME = re.compile(r"(KEY|TOKEN|SECRET)")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
ONE_SHOT = "service_completed_successfully"


def _image_tag(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def _script_of(service: dict[str, Any]) -> str:
    """The text of the script a one-shot service runs from a bind-mounted folder of this repository."""
    command = service.get("command") or []
    script = str(command[0] if isinstance(command, list) else command.split()[0])
    for mount in mounts(service):
        if not mount.named and script.startswith(mount.target.rstrip("/") + "/"):
            return (ROOT / mount.source / script.removeprefix(mount.target.rstrip("/") + "/")).read_text()
    raise AssertionError(f"{script} is not in a folder of this repository mounted into the service")


def _dockerfile_stages() -> dict[str, list[str]]:
    """Stage name → its instructions (continuation lines joined)."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            parts = line.split()
            current = [line]
            stages[parts[3] if len(parts) >= 4 and parts[2].upper() == "AS" else f"#{len(stages)}"] = current
        else:
            current.append(line)
    return stages


def _compose_commands(text: str) -> list[list[str]]:
    """The ``docker compose ...`` command lines in a Markdown text, as argument lists."""
    commands = []
    for match in re.finditer(r"docker compose ([^`\n|;&#]*)", text):
        try:
            commands.append(shlex.split(match[1]))
        except ValueError:
            commands.append(match[1].split())
    return commands


# Options that take a value, before the subcommand (Compose's own) and after it; the values of
# those marked True are service names.
_GLOBAL_VALUE_OPTIONS = {
    "-f",
    "--file",
    "-p",
    "--project-name",
    "--profile",
    "--env-file",
    "--project-directory",
}
_VALUE_OPTIONS = {
    "-e": False, "--env": False, "--entrypoint": False, "-u": False, "--user": False, "-w": False,
    "--workdir": False, "--name": False, "--publish": False, "-v": False, "--volume": False, "-l": False,
    "--label": False, "-t": False, "--timeout": False, "--tail": False, "-n": False, "--since": False,
    "--until": False, "--wait-timeout": False, "--pull": False, "--index": False, "--scale": True,
    "--exit-code-from": True, "--attach": True, "--no-attach": True,
}  # fmt: skip
_FIRST_ARG_ONLY = {"run", "exec", "cp"}
_NO_SERVICES = {"config", "down", "ls", "version", "images", "events", "stats", "wait", "watch"}


def _services_named(command: list[str]) -> set[str]:
    """The services a ``docker compose`` command line (without ``docker compose``) names."""
    named: set[str] = set()
    args = iter(command)
    subcommand = None
    for arg in args:
        option, has_value, value = arg.partition("=")
        if subcommand is None and option in _GLOBAL_VALUE_OPTIONS:
            if not has_value:
                next(args, "")
            continue
        if arg.startswith("-"):
            if subcommand is not None and option in _VALUE_OPTIONS:
                value = value if has_value else next(args, "")
                if _VALUE_OPTIONS[option]:
                    named.add(value.split("=", 1)[0])
            continue
        if subcommand is None:
            subcommand = arg
            continue
        if subcommand in _NO_SERVICES:
            break
        named.add(arg.split(":", 1)[0] if subcommand == "cp" else arg)
        if subcommand in _FIRST_ARG_ONLY:
            break
    return {name for name in named if name and not name.startswith(("<", "."))}


def _documented_service_table() -> set[str]:
    """Service names in the first column of the services table in docs/operations.md's compose section."""
    section = OPERATIONS_DOC.read_text().split("## Compose stack", 1)[1].split("\n## ", 1)[0]
    table = section.split("| service |", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.MULTILINE))


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in services().items():
        if "build" in service and "image" not in service:
            continue
        image = service.get("image", "")
        tag = _image_tag(image)
        assert PINNED_TAG.match(tag), f"service {name}: image {image!r} is not pinned to a version"


def test_the_dockerfile_base_image_is_pinned() -> None:
    stages = _dockerfile_stages()
    for stage, instructions in stages.items():
        base = instructions[0].split()[1]
        if base in stages:
            continue
        assert PINNED_TAG.match(_image_tag(base)), f"Dockerfile stage {stage}: {base!r} is not pinned"


def test_no_service_uses_the_deprecated_auto_setup_image() -> None:
    for name, service in services().items():
        assert "auto-setup" not in service.get("image", ""), f"service {name} uses temporalio/auto-setup"


def test_every_published_port_is_bound_to_loopback() -> None:
    published = 0
    for name, service in services().items():
        assert service.get("network_mode") != "host", f"service {name} shares the host's network"
        for port in service.get("ports") or []:
            published += 1
            if isinstance(port, dict):
                host_ip = str(port.get("host_ip", ""))
            else:
                parts = interpolate(str(port), {}).split(":")
                host_ip = parts[0] if len(parts) == 3 else ""
            assert host_ip == "127.0.0.1", f"service {name} publishes {port!r} beyond 127.0.0.1"
    assert published, "the stack publishes nothing (the Web UI at least should be reachable)"


def test_no_secret_is_written_in_the_file() -> None:
    for name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            if not SECRET_NAME.search(key) or value is None:
                continue
            assert is_one_substitution(value), (
                f"service {name}: {key} is written in the file, not taken from .env"
            )
            (substitution,) = substitutions(value)
            if substitution.op in ("-", ":-"):
                assert substitution.arg in PLACEHOLDER_SECRETS, f"service {name}: {key} defaults to a secret"
    for text in strings(load()):
        for password in re.findall(r"://[^/@:\s]*:([^/@\s]*)@", mask_substitutions(text)):
            assert password == "\x00", f"a password is written in a URL: {text!r}"


def test_every_service_the_docs_name_exists() -> None:
    defined = set(services())
    named = _documented_service_table()
    for doc in (README, OPERATIONS_DOC):
        for command in _compose_commands(doc.read_text()):
            named |= _services_named(command)
    assert named, "docs/operations.md names no service"
    assert named <= defined, f"documented but not in docker-compose.yml: {sorted(named - defined)}"


def test_every_service_is_documented() -> None:
    missing = set(services()) - _documented_service_table()
    assert not missing, f"services missing from the table in docs/operations.md: {sorted(missing)}"


def test_worker_restarts_and_reports_readiness() -> None:
    worker = services()["worker"]
    assert worker.get("restart") in ("unless-stopped", "always")
    healthcheck = worker.get("healthcheck") or {}
    assert not healthcheck.get("disable") and healthcheck.get("test") not in (None, ["NONE"])
    assert _depends_on(worker).get("postgres") == "service_healthy"


def test_depends_on_names_existing_services_with_valid_conditions() -> None:
    defined = services()
    for name, service in defined.items():
        for dependency, condition in _depends_on(service).items():
            assert dependency in defined, f"service {name} depends on unknown service {dependency}"
            assert condition in CONDITIONS, f"service {name}: unknown condition {condition}"
            target = defined[dependency]
            if condition == "service_healthy":
                assert "healthcheck" in target, (
                    f"{name} waits for {dependency} to be healthy; it has no healthcheck"
                )
            if condition == ONE_SHOT:
                assert target.get("restart", "no") not in ("always", "unless-stopped"), (
                    f"{name} waits for {dependency} to exit, but {dependency} is restarted forever"
                )


def test_a_one_shot_migrates_the_catalogue_before_the_worker_and_the_api_start() -> None:
    defined = services()
    migrate, worker = defined["migrate"], defined["worker"]
    env = operator_env()

    assert migrate["command"] == ["python", "-m", "sora_temporal.schema", "upgrade"]
    assert migrate.get("build") == worker["build"] and "image" not in migrate, "not the worker's image"
    assert environment(migrate, env)["DATABASE_URL"] == environment(worker, env)["DATABASE_URL"]
    assert _depends_on(migrate).get("postgres") == "service_healthy"
    assert "migrate" not in _depends_on(migrate)
    for name in ("worker", "api"):
        assert _depends_on(defined[name]).get("migrate") == ONE_SHOT, f"{name} may start on an old schema"


def test_temporal_runs_on_postgres_with_a_schema_set_up_by_the_admin_tools() -> None:
    defined = services()
    (server_name,) = [n for n, s in defined.items() if s.get("image", "").startswith("temporalio/server:")]
    server = defined[server_name]
    assert server["environment"]["DB"].startswith("postgres")
    setups = [n for n, condition in _depends_on(server).items() if condition == ONE_SHOT]
    assert setups, "the Temporal server does not wait for a schema set-up service"
    setup = defined[setups[0]]
    assert setup["image"].startswith("temporalio/admin-tools:")
    assert _image_tag(setup["image"]) == _image_tag(server["image"]), "admin tools and server versions differ"
    assert "temporal-sql-tool" in _script_of(setup)


def test_the_one_shot_service_creates_the_search_attributes_the_code_uses() -> None:
    defined = services()
    creators = [
        n
        for n, s in defined.items()
        if "command" in s and "search-attribute create" in _script_of_or_empty(s)
    ]
    assert len(creators) == 1, f"expected one service creating search attributes, found {creators}"
    (creator,) = creators
    created = dict(re.findall(r"\b(Sora\w+):(\w+)", _script_of(defined[creator])))
    # The CLI's type names: KEYWORD_LIST -> KeywordList.
    expected = {
        key.name: "".join(part.title() for part in key.indexed_value_type.name.split("_"))
        for key in search_attributes.ALL
    }
    assert created == expected
    assert _depends_on(defined["worker"]).get(creator) == ONE_SHOT, "the worker may start before they exist"


def _script_of_or_empty(service: dict[str, Any]) -> str:
    try:
        return _script_of(service)
    except (AssertionError, OSError):
        return ""


def test_storage_is_a_named_volume_the_worker_user_can_write() -> None:
    compose = load()
    worker = services(compose)["worker"]
    storage_dir = environment(worker, operator_env())["STORAGE_DIR"]
    (mount,) = [m for m in mounts(worker) if m.target == storage_dir]
    assert mount.named and mount.source in (compose.get("volumes") or {}) and not mount.read_only
    stage = _dockerfile_stages()[worker["build"]["target"]]
    users = [line.split()[1] for line in stage if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the worker image runs as root"
    # The base stage creates the directory owned by that user; a new named volume copies the ownership.
    created = " ".join(line for instructions in _dockerfile_stages().values() for line in instructions)
    assert re.search(rf"install -d -o {users[-1]}\b[^&]*\s{re.escape(storage_dir)}(\s|$)", created), (
        f"the Dockerfile does not create {storage_dir} owned by {users[-1]}"
    )


def test_required_variables_are_documented_and_none_is_an_api_key() -> None:
    required = {s.name for text in strings(load()) for s in substitutions(text) if s.required}
    assigned, _ = env_example_names()
    assert required <= assigned, (
        f"required but not asked for in deploy/.env.example: {sorted(required - assigned)}"
    )
    assert not {name for name in required if KEY_NAME.search(name)}, "a key must not be required"


def test_every_variable_the_file_reads_is_listed_in_the_env_example() -> None:
    used = {s.name for text in strings(load()) for s in substitutions(text)}
    passed_through = {
        key for service in services().values() for key, value in (service.get("environment") or {}).items()
        if value is None
    }  # fmt: skip
    _, mentioned = env_example_names()
    missing = (used | passed_through) - mentioned
    assert not missing, f"not listed in deploy/.env.example: {sorted(missing)}"


def test_with_no_keys_jobs_go_to_the_simulator_the_stack_runs() -> None:
    env = operator_env()
    defined = services()
    worker_env = environment(defined["worker"], env)
    assert "OPENAI_API_KEY" not in env and worker_env["OPENAI_API_KEY"], "the simulator needs a non-empty key"
    host = urlsplit(worker_env["OPENAI_BASE_URL"]).hostname
    assert host in defined, (
        f"OPENAI_BASE_URL defaults to {worker_env['OPENAI_BASE_URL']}, not a compose service"
    )
    simulator = defined[host]
    assert not simulator.get("profiles"), f"{host} runs only with a profile"
    replicas = (simulator.get("deploy") or {}).get("replicas", 1)
    assert int(interpolate(str(replicas), env)) >= 1


@pytest.mark.parametrize("command", ["list", "status"])
def test_the_docs_show_how_to_reach_the_catalogue(command: str) -> None:
    text = OPERATIONS_DOC.read_text()
    assert f"docker compose run --rm worker python starter.py {command}" in text
    postgres_ports = services()["postgres"].get("ports") or []
    assert postgres_ports, "the catalogue database is not published on 127.0.0.1"


def test_the_worker_can_run_as_several_replicas() -> None:
    """``WORKER_REPLICAS`` or ``docker compose up --scale worker=N``: no fixed name, no published port."""
    worker = services()["worker"]
    assert "container_name" not in worker and not worker.get("ports")
    replicas = str(worker["deploy"]["replicas"])
    assert interpolate(replicas, operator_env()) == "1"
    assert interpolate(replicas, {**operator_env(), "WORKER_REPLICAS": "3"}) == "3"
