import dataclasses
from typing import Literal

import pytest

from corpus.config import ConfigError, config_from_dict, setting


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Inner:
    threshold: float = setting(0.5, doc="score cut", ge=0.0, le=1.0)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Example:
    workers: int = setting(2, doc="actors", unit="actors", ge=1)
    mode: Literal["fast", "exact"] = setting("fast", doc="how")
    langs: tuple[str, ...] = setting(("en",), doc="languages")
    inner: Inner = setting(Inner(), doc="nested")
    name: str | None = setting(None, doc="optional")


def test_defaults_and_coercion():
    cfg = config_from_dict(Example, {"langs": ["en", "fr"], "inner": {"threshold": 1}}, "x")
    assert cfg.workers == 2 and cfg.langs == ("en", "fr") and cfg.inner.threshold == 1.0
    assert isinstance(cfg.inner.threshold, float)


def test_unknown_key_names_field_and_suggests():
    with pytest.raises(ConfigError, match=r"x: unknown key 'workrs'.*Did you mean 'workers'"):
        config_from_dict(Example, {"workrs": 3}, "x")


def test_wrong_type_names_field_value_and_fix():
    with pytest.raises(ConfigError, match=r"x\.workers: got 'two' \(str\); expected int\. Fix"):
        config_from_dict(Example, {"workers": "two"}, "x")
    with pytest.raises(ConfigError, match=r"x\.workers: got True"):
        config_from_dict(Example, {"workers": True}, "x")


def test_bad_range_names_bound_and_unit():
    with pytest.raises(ConfigError, match=r"x\.workers: 0 actors is out of range\. Fix: use a value >= 1"):
        config_from_dict(Example, {"workers": 0}, "x")
    with pytest.raises(ConfigError, match=r"x\.inner\.threshold: 1\.5 is out of range"):
        config_from_dict(Example, {"inner": {"threshold": 1.5}}, "x")


def test_literal_suggests_close_value():
    with pytest.raises(ConfigError, match=r"x\.mode: 'exakt' is not allowed\. Did you mean 'exact'"):
        config_from_dict(Example, {"mode": "exakt"}, "x")


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="expected a mapping"):
        config_from_dict(Example, ["workers"], "x")


def test_config_is_frozen():
    cfg = config_from_dict(Example, {}, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.workers = 3
