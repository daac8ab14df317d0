"""The ``dlcli`` command's entry point: the app's exit codes, then an exit that skips the last collection."""

from __future__ import annotations

import gc
import sys
import tomllib
from pathlib import Path

import pytest

from dlcli.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_command_is_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"dlcli": "dlcli.cli:main"}


@pytest.mark.parametrize(("args", "code"), [(["--version"], 0), (["train", "no-such-file.yaml"], 2)])
def test_main_keeps_the_exit_code_and_freezes_the_survivors(monkeypatch, capsys, args, code):
    monkeypatch.setattr(sys, "argv", ["dlcli", *args])
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code == code
        # The objects alive at the end are frozen: the interpreter's collection at exit skips them.
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    out = capsys.readouterr()
    assert ("dlcli " in out.out) if code == 0 else ("no-such-file.yaml" in out.err)
