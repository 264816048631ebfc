"""The layout's rules, checked on the source: product code never reaches into its test tooling.

Product code is ``sora_temporal/``, ``workflows/``, ``activities/``, ``api/``, ``worker.py`` and
``starter.py``. It must not import the simulators (``simulator``), the developer
tooling (``devtools``) or the tests (``tests``, ``support``, ``fault_checks``, ``conftest``); the
command line must not load the worker's activities; and only the settings module reads the
environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = ("sora_temporal", "workflows", "activities", "api")
PRODUCT_SCRIPTS = ("worker.py", "starter.py")
TEST_TOOLING = {"simulator", "devtools", "tests", "support", "fault_checks", "conftest"}
SETTINGS_MODULE = Path("sora_temporal/settings.py")


def _python_files(package: str) -> list[Path]:
    directory = ROOT / package
    return sorted(directory.rglob("*.py")) if directory.is_dir() else []


def _product_files() -> list[Path]:
    files = [path for package in PRODUCT_PACKAGES for path in _python_files(package)]
    return files + [ROOT / script for script in PRODUCT_SCRIPTS]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (``TYPE_CHECKING`` blocks and functions too)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return {name.strip(".") for name in found if name.strip(".")}


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("import_module", "__import__")


def _reads_environment(path: Path) -> bool:
    """``os.environ``/``os.getenv`` in the code, or the text ``os.environ`` anywhere in the file."""
    source = path.read_text()
    if "os.environ" in source:
        return True
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "environb", "getenv", "getenvb")
        ):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in ("environ", "environb", "getenv", "getenvb") for alias in node.names)
        ):
            return True
    return False


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_rules_see_the_product_code() -> None:
    names = {_relative(path) for path in _product_files()}

    assert {
        "worker.py",
        "starter.py",
        "workflows/video.py",
        "sora_temporal/storage/vercel.py",
        "api/app.py",
        "api/__main__.py",
    } <= names


@pytest.mark.parametrize("path", _product_files(), ids=_relative)
def test_product_code_never_imports_the_simulators_devtools_or_tests(path: Path) -> None:
    offending = sorted(name for name in _imported_modules(path) if name.split(".")[0] in TEST_TOOLING)

    assert offending == [], f"{_relative(path)} imports test tooling: {offending}"


@pytest.mark.parametrize(
    "path",
    [p for package in ("sora_temporal", "workflows", "activities") for p in _python_files(package)],
    ids=_relative,
)
def test_the_core_never_imports_the_http_process(path: Path) -> None:
    offending = sorted(name for name in _imported_modules(path) if name.split(".")[0] == "api")

    assert offending == [], f"{_relative(path)} imports the api package: {offending}"


def test_the_command_line_never_imports_the_workers_activities() -> None:
    starter = ROOT / "starter.py"

    offending = sorted(name for name in _imported_modules(starter) if name.split(".")[0] == "activities")

    assert offending == [], f"starter.py imports {offending}"


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = {_relative(path) for path in _product_files() if _reads_environment(path)}

    assert readers <= {str(SETTINGS_MODULE)}, f"the environment is read outside settings: {sorted(readers)}"
