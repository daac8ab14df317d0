"""YAML text in and out: reading a config file and parsing YAML safely (no Python object tags, a bounded size
and bounded aliases), and writing a config back as YAML."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from dlcli.errors import ConfigError

# Keeps a hostile YAML file (billion laughs, huge override lists) from eating memory.
MAX_CONFIG_BYTES = 1_000_000


def read_yaml(path: Path) -> Any:
    """Read a YAML file with the safe loader; syntax errors become a ConfigError with the line."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):  # a pipe would be read forever
            raise ConfigError("", f"{path} is not a regular file (a pipe or device?); give a YAML config file")
        size = info.st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError("", f"{path}: the file is {size} bytes; a config is at most {MAX_CONFIG_BYTES}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", f"config file not found: {path.resolve()}") from None
    except IsADirectoryError:
        raise ConfigError("", f"{path.resolve()} is a directory, not a YAML config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    return parse_yaml(text, str(path))


MAX_EXPANDED_VALUES = 1_000_000


def _expanded_size(value: Any, memo: dict[int, int], depth: int = 0) -> int:
    """How many values ``value`` holds once aliases are expanded (shared objects counted once each time
    they are reached, in time linear in the number of distinct objects)."""
    if depth > 200:
        raise ConfigError("", "the YAML is nested more than 200 levels deep")
    key = id(value)
    if key in memo:
        return memo[key]
    if isinstance(value, dict):
        size = 1 + sum(_expanded_size(v, memo, depth + 1) for v in value.values()) + len(value)
    elif isinstance(value, list):
        size = 1 + sum(_expanded_size(v, memo, depth + 1) for v in value)
    else:
        return 1
    memo[key] = size
    return size


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text safely (no Python object tags, bounded aliases)."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError("", f"{where}: YAML syntax error{at}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{where}: YAML error: {exc}") from None
    except RecursionError:
        raise ConfigError("", f"{where}: the YAML is nested too deeply") from None
    # PyYAML shares aliased objects, but everything downstream (validation, dumping) expands them:
    # a "billion laughs" file is refused here, in linear time.
    size = _expanded_size(data, {})
    if size > MAX_EXPANDED_VALUES:
        raise ConfigError("", f"{where}: the YAML expands to {size:,} values through aliases (*refs); at most "
                          f"{MAX_EXPANDED_VALUES:,} are allowed (an alias bomb?)")
    return data


def dump_yaml(data: Any) -> str:
    """YAML text for a config dict, keys in schema order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
