"""The server configuration: the example file parses to the defaults, and bad files are refused clearly."""

import tomllib
from pathlib import Path

import pytest

from logserver.config import ServerConfig, config_from_toml
from tlogcore.errors import MalformedError

REPO = Path(__file__).resolve().parent.parent


def test_example_config_is_the_defaults() -> None:
    assert config_from_toml(tomllib.loads((REPO / "config.example.toml").read_text())) == ServerConfig()


@pytest.mark.parametrize(
    "text,words",
    [
        ("[nope]\nx = 1\n", "unknown section"),
        ("[sequencer]\nmax_pool = 'many'\n", "must be a int"),
        ("[sequencer]\nmax_pool = -5\n", "positive"),
        ("[sequencer]\nmax_poll = 5\n", "unknown option"),
        ("[limits]\nmax_future_seconds = true\n", "must be a int"),
        ("[[witness]]\nname = 'w'\nurl = 'http://x'\n", "exactly name, url and vkey"),
        ("[[witness]]\nname = 'w'\nurl = 'http://x'\nvkey = 'bad'\n", "verifier key"),
    ],
)
def test_bad_config_is_refused(text: str, words: str) -> None:
    with pytest.raises(MalformedError, match=words):
        config_from_toml(tomllib.loads(text))


def test_overrides() -> None:
    config = config_from_toml({"sequencer": {"flush_interval_ms": 50, "lease_ttl_seconds": 2}, "log": {"origin": "x"}})
    assert (config.flush_interval_ms, config.lease_ttl_seconds, config.origin) == (50, 2.0, "x")
