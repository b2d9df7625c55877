"""The layout docs/architecture.md promises, checked: who may import whom, what the runtime path
leaves out, and functions small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_FUNCTION_LINES = 80
DEV_ONLY = (
    "service.sandbox",
    "service.demo",
    "service.samples",
    "service.testing",
    "service.webhooks.example",
    "service.failpoints",
    "testcontainers",
    "pytest",
    "hypothesis",
)


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _from(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(n for n in _imports(path) if n.split(".")[0] in prefixes or n in prefixes)


def test_no_function_in_service_is_over_80_lines() -> None:
    long = []
    for path in _modules("service"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long, long


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("contracts", ("service", "consumers", "aio_pika", "httpx", "asyncpg", "litestar")),
        ("consumers", ("service", "aio_pika", "httpx", "asyncpg", "litestar")),
        ("bench", ("tests",)),
    ],
)
def test_arrows_point_down(folder: str, forbidden: tuple[str, ...]) -> None:
    offenders = {str(p.relative_to(ROOT)): _from(p, forbidden) for p in _modules(folder)}
    assert not {path: names for path, names in offenders.items() if names}


def test_the_runtime_path_imports_no_developer_tool() -> None:
    """What `merch-pipeline run` loads: the CLI, the lifecycle and the composition root, which
    builds every adapter. The sandbox, demo, samples, test support and failpoints stay out."""
    probe = (
        "import sys, service.cli, service.runtime, service.bootstrap; "
        f"print([m for m in sys.modules if m.startswith({DEV_ONLY!r})])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_the_sandbox_is_written_from_the_docs_alone() -> None:
    """The sandbox shares no code with what it stands in front of: no contract Struct, no client,
    no signing of the service's, so a misread upstream contract cannot pass twice."""
    offenders = {}
    for path in _modules("service/sandbox"):
        names = {n for n in _imports(path) if n.split(".")[0] in ("contracts", "consumers")}
        names |= {
            n
            for n in _imports(path)
            if n.startswith("service") and not n.startswith("service.sandbox")
        }
        relative = [
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.level
        ]
        if names or relative:
            offenders[str(path.relative_to(ROOT))] = sorted(names) + [f".{m}" for m in relative]
    assert not offenders, offenders
