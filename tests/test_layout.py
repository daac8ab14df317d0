"""The package's shape (README, "Code map"): layers checked by import-linter, small modules, private APIs in one place.

These fail when a change breaks the layout, not the behaviour: an upward import, a module grown past 300 lines
without saying why, a ``keras.src`` import outside ``dlcli/runtime/private.py``, or a function-local import of
another dlcli module with no comment saying it is lazy on purpose.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dlcli"
MAX_LINES = 300
LONGER_BECAUSE = "Longer than 300 lines"  # what a module's docstring says when it must be longer, then why
PRIVATE_MODULE = PACKAGE / "runtime" / "private.py"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_packages_import_only_downwards():
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.skip("import-linter is not installed here: pip install -e '.[test]'")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_modules_are_short_or_say_why():
    long = []
    for path in _modules():
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and LONGER_BECAUSE not in doc:
            long.append(f"{_name(path)}: {lines} lines")
    assert not long, long


def test_private_keras_imports_live_in_one_module():
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(n.startswith(("keras.src", "keras_tuner.src")) for n in names) and path != PRIVATE_MODULE:
                found.append(f"{_name(path)}:{node.lineno}")
    assert not found, found


def _local_dlcli_imports(tree: ast.AST) -> list[ast.stmt]:
    found = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                module = node.module if isinstance(node, ast.ImportFrom) else (
                    node.names[0].name if isinstance(node, ast.Import) else None)
                if module and (module == "dlcli" or module.startswith("dlcli.")):
                    found.append(node)
    return found


def test_function_local_imports_say_they_are_lazy():
    """A function-local import must not hide a circle: each says why it is lazy (start-up speed, a heavy library)."""
    unexplained = []
    for path in _modules():
        text = path.read_text()
        lines = text.splitlines()
        for node in _local_dlcli_imports(ast.parse(text)):
            first = node.lineno - 1
            while first > 0 and lines[first - 1].strip().startswith(("from ", "import ")):
                first -= 1  # a block of imports may share the comment above it
            block = lines[max(first - 1, 0):node.end_lineno]
            if not any("lazy" in line for line in block):
                unexplained.append(f"{_name(path)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not unexplained, "\n".join(unexplained)
