"""``big_import`` (a large import without the garbage collector, what it loaded frozen out of later collections) and
``determinism_on`` (op determinism where ``deterministic`` asks for it: ``auto`` on a GPU only)."""

from __future__ import annotations

import gc
import sys
import types
import weakref

import pytest

from dlcli.runtime.collector import big_import
from dlcli.runtime.devices import determinism_on


class Node:
    pass


def test_big_import_collects_first_pauses_then_freezes(monkeypatch):
    monkeypatch.delitem(sys.modules, "a_big_library", raising=False)
    gc.unfreeze()
    cycle = Node()
    cycle.me = cycle  # garbage from before the import: collected, not frozen
    gone = weakref.ref(cycle)
    del cycle
    try:
        with big_import("a_big_library"):
            assert gone() is None
            assert not gc.isenabled()
            sys.modules["a_big_library"] = types.ModuleType("a_big_library")
        assert gc.isenabled()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with big_import("a_big_library"):  # already imported: nothing is paused or frozen
            assert gc.isenabled()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
        sys.modules.pop("a_big_library", None)


def test_big_import_restores_the_collector_after_an_error(monkeypatch):
    monkeypatch.delitem(sys.modules, "a_missing_library", raising=False)
    try:
        try:
            with big_import("a_missing_library"):
                import a_missing_library  # noqa: F401
        except ImportError:
            pass
        assert gc.isenabled()
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(("setting", "device", "on"), [
    ("auto", "cpu", False), ("auto", "gpu", True), (True, "cpu", True), (True, "gpu", True),
    (False, "cpu", False), (False, "gpu", False)])
def test_op_determinism_follows_the_setting_and_auto_means_a_gpu(setting, device, on):
    assert determinism_on(setting, device) is on
