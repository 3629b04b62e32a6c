"""Fuzzing the three TOML configuration loaders: bad TOML or bad values give the documented error, nothing else.

logserver.config and monitor.config take a parsed document (their CLIs turn
tomllib.TOMLDecodeError and TlogError into one readable line); witness.config
takes the text and raises MalformedError for both.
"""

import datetime
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logserver.cli import load_config as server_load_config
from logserver.config import ServerConfig
from logserver.config import config_from_toml as server_config_from_toml
from monitor.commands import load_config as monitor_load_config
from monitor.config import MonitorConfig
from monitor.config import config_from_toml as monitor_config_from_toml
from tlogcore.errors import MalformedError, TlogError
from witness.config import WitnessConfig, parse_config

from .properties import TARGETS, check_finite
from .samples import all_samples, read_policy_file
from .strategies import inputs

CONFIG_PARSERS = ["config_logserver", "config_monitor", "config_witness"]
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Names the loaders know, so generated documents reach past the "unknown option" check.
_KNOWN_KEYS = [
    "log", "server", "sequencer", "limits", "storage", "witnessing", "static", "witness", "origin", "listen",
    "verify_workers", "flush_interval_ms", "max_batch", "max_pool", "lease_ttl_seconds", "max_body_bytes",
    "max_batch_statements", "max_future_seconds", "sqlite_busy_timeout_ms", "witness_timeout_ms", "witness_retries",
    "tiles_dir", "name", "url", "vkey", "state", "poll_interval_seconds", "stale_after_seconds",
    "unreachable_after_seconds", "verify", "workers", "chunk_tiles", "max_concurrent_requests", "timeout_seconds",
    "watch", "sink", "policy", "policy_file", "quorum", "witness_urls", "registry_vkeys", "registry", "issuer_keys",
    "issuer_names", "expected", "expected_command", "revocations", "logs", "type", "path", "command", "headers",
    "retries",
]  # fmt: skip

_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 2**63 - 1, 10**30, 10**400, -(10**400)]),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(["tree", "file", "webhook", "http://127.0.0.1:1", "127.0.0.1:0", "policy.txt", "[::1]:80"]),
    st.sampled_from([s.decode() for s in all_samples()["vkey"][:3]]),
    st.datetimes(),
    st.dates(),
    st.times(),
)
documents = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(_KNOWN_KEYS), children, max_size=5)
    ),
    max_leaves=20,
).filter(lambda d: isinstance(d, dict)) | st.dictionaries(
    st.sampled_from(_KNOWN_KEYS),
    st.recursive(
        _scalars,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(_KNOWN_KEYS), c, max_size=5),
        max_leaves=15,
    ),
    max_size=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a parsed TOML document (dict keys and list indexes)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    found = []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


@st.composite
def perturbed(draw: st.DrawFn, parser: str) -> dict[str, Any]:
    """A valid sample document with one to three values replaced by other values (or types) or removed."""
    document = tomllib.loads(all_samples()[parser][0].decode())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(
                _scalars | st.lists(_scalars, max_size=2) | st.dictionaries(st.text(max_size=8), _scalars, max_size=2)
            )
        if not _paths(document):
            break
    return document


@pytest.mark.parametrize("parser", CONFIG_PARSERS)
def test_sample_configs_load(parser: str) -> None:
    """The seed configs are valid: mutations start from accepted files."""
    (sample,) = all_samples()[parser]
    text = sample.decode()
    loaded: Any
    if parser == "config_logserver":
        loaded = server_config_from_toml(tomllib.loads(text))
        assert isinstance(loaded, ServerConfig) and loaded.witnesses
    elif parser == "config_monitor":
        loaded = monitor_config_from_toml(tomllib.loads(text), Path("/etc/tlog"), read_policy_file)
        assert isinstance(loaded, MonitorConfig) and len(loaded.logs) == 2
    else:
        loaded = parse_config(text)
        assert isinstance(loaded, WitnessConfig) and loaded.logs


@pytest.mark.parametrize("parser", CONFIG_PARSERS)
@EXAMPLES
@given(data=st.data())
def test_bad_config_text_gives_the_documented_error(parser: str, data: st.DataObject) -> None:
    TARGETS[parser](data.draw(inputs(all_samples()[parser]), label="config text"))


@EXAMPLES
@given(document=documents | perturbed("config_logserver"))
def test_server_config_documents(document: dict[str, Any]) -> None:
    try:
        config = server_config_from_toml(document)
    except TlogError:
        return
    assert isinstance(config, ServerConfig)
    check_finite(config, "logserver config")


@EXAMPLES
@given(document=documents | perturbed("config_monitor"))
def test_monitor_config_documents(document: dict[str, Any]) -> None:
    try:
        config = monitor_config_from_toml(document, Path("/etc/tlog"), read_policy_file)
    except TlogError:
        return
    assert isinstance(config, MonitorConfig)
    for part in (config, *config.sinks):
        check_finite(part, "monitor config")


def test_generated_documents_include_dates() -> None:
    """TOML has date and time values; the loaders see them (tomllib gives datetime objects)."""
    document = tomllib.loads("state = 1979-05-27T07:32:00Z\n")
    assert isinstance(document["state"], datetime.datetime)
    with pytest.raises(TlogError):
        monitor_config_from_toml(document, Path("/etc/tlog"), read_policy_file)


@pytest.mark.parametrize(
    ("parser", "old", "new"),
    [
        ("config_monitor", "poll_interval_seconds = 10", "poll_interval_seconds = nan"),
        ("config_monitor", "poll_interval_seconds = 10", "timeout_seconds = inf"),
        ("config_logserver", "lease_ttl_seconds = 5.0", "lease_ttl_seconds = inf"),
        ("config_logserver", "lease_ttl_seconds = 5.0", "lease_ttl_seconds = nan"),
        ("config_logserver", "lease_ttl_seconds = 5.0", "lease_ttl_seconds = 1" + "0" * 400),
        ("config_monitor", "poll_interval_seconds = 10", "poll_interval_seconds = 1" + "0" * 400),
    ],
)
def test_nan_and_inf_are_refused(parser: str, old: str, new: str) -> None:
    """Regressions found fuzzing the loaders: TOML's nan and inf passed the "positive" checks, and an
    integer too large for a float option raised OverflowError."""
    text = all_samples()[parser][0].decode()
    assert old in text
    document = tomllib.loads(text.replace(old, new))
    with pytest.raises(TlogError, match="finite"):
        if parser == "config_monitor":
            monitor_config_from_toml(document, Path("/etc/tlog"), read_policy_file)
        else:
            server_config_from_toml(document)


@pytest.mark.parametrize(("opening", "inner", "closing"), [("[", "", "]"), ("{a=", "1", "}")])
def test_deeply_nested_toml_is_one_readable_error(tmp_path: Path, opening: str, inner: str, closing: str) -> None:
    """Regression (atheris, config_logserver): tomllib raises RecursionError, not TOMLDecodeError, past ~1000
    nested arrays or inline tables; each loader now reports it like any other bad TOML."""
    nested = "x = " + opening * 1200 + inner + closing * 1200 + "\n"
    with pytest.raises(RecursionError):
        tomllib.loads(nested)
    with pytest.raises(MalformedError, match="nested too deeply"):
        parse_config('name = "w"\n' + nested)
    path = tmp_path / "deep.toml"
    path.write_text(nested)
    with pytest.raises(click.ClickException, match="nested too deeply"):
        server_load_config(path)
    with pytest.raises(click.ClickException, match="nested too deeply"):
        monitor_load_config(path)
