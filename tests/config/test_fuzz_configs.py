"""Property-based: hundreds of malformed and mutated configs either train or fail with one clear line.

`python -m pytest tests/config/test_fuzz_configs.py --fuzz-examples 1000` runs a larger amount than CI's 100.
"""

from __future__ import annotations

import copy
import shutil
import uuid
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import tiny_config

BASE = tiny_config(fit={"epochs": 1, "batch_size": 32})

leaves = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from([0, -1, 1, 2, 3, 10**9, 10**7, 0.5, 1e-30, 1e30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "relu", "Dense", "adam", "mse", "../../etc", "🙂", "\x00.csv", "iris", "digits",
                     "data.csv", "Conv2D", "softmax", "val_loss", "l2", "nan", ".inf", "~", "[1, 2]"]),
)
values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)


def all_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += all_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            paths += all_paths(value, (*prefix, i))
    return paths


def parent_of(cfg: Any, path: tuple) -> Any:
    node = cfg
    for part in path[:-1]:
        node = node[part]
    return node


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value}
    return value


@st.composite
def mutated_configs(draw) -> Any:
    cfg = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = all_paths(cfg)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = parent_of(cfg, path), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "extra", "huge", "deep", "type"]))
        if action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif action == "extra" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        elif action == "huge":
            parent[key] = list(range(draw(st.sampled_from([1000, 100_000]))))
        elif action == "deep":
            parent[key] = deep(draw(st.sampled_from([20, 150, 1000])))
        elif action == "type":
            parent[key] = draw(st.sampled_from([[], {}, "text", 3.5, True, None, [{"type": "Dense"}]]))
    if draw(st.integers(0, 9)) == 0:  # now and then the whole document is something else entirely
        cfg = draw(values)
    return cfg


def as_yaml(cfg: Any) -> str:
    try:
        return yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, RecursionError):
        return "{unbalanced: [yaml\n"


@pytest.mark.slow
def test_mutated_configs_train_or_fail_cleanly(cli, tmp_path_factory, request):
    examples = request.config.getoption("--fuzz-examples")
    outcomes = {"trained": 0, "config error": 0, "run failed": 0}

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated_configs())
    def check(cfg: Any) -> None:
        where = tmp_path_factory.mktemp("fuzz", numbered=True)
        config = where / f"{uuid.uuid4().hex[:6]}.yaml"
        config.write_text(as_yaml(cfg), encoding="utf-8")
        result = cli("train", config, "--runs-dir", where / "runs", "--set", "fit.epochs=1")
        stderr = result.stderr.strip()
        assert "Traceback" not in result.output, result.output
        if result.exit_code == 0:
            outcomes["trained"] += 1
            assert "saved to" in result.stdout
        elif result.exit_code == 2:
            outcomes["config error"] += 1
            assert stderr.startswith(("error: ", "Usage:")), (cfg, stderr)
            if stderr.startswith("error: "):
                assert len(stderr.splitlines()) == 1, stderr
            runs = where / "runs"
            assert not runs.exists() or not any(p.is_dir() for p in runs.iterdir()), "exit 2 left a run behind"
        else:
            # A run that started and failed (e.g. an absurd learning rate made the loss NaN): exit 1, one line.
            assert result.exit_code == 1 and "loss became NaN" in stderr, (cfg, result.exit_code, result.output,
                                                                            result.exception)
            outcomes["run failed"] += 1
        shutil.rmtree(where, ignore_errors=True)

    check()
    print(f"\nfuzzed {examples} configs: {outcomes}")
    assert sum(outcomes.values()) >= examples
    assert outcomes["config error"] > 0 and outcomes["trained"] > 0
