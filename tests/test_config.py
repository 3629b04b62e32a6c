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
        ("[[witness]]\nname = 'w'\nurl = 'http://x'\n", "needs url and vkey, and may have name"),
        ("[[witness]]\nurl = 'http://x'\nvkey = 'k'\nlabel = 'w'\n", "needs url and vkey, and may have name"),
        ("[[witness]]\nname = 'w'\nurl = 'http://x'\nvkey = 'bad'\n", "verifier key"),
    ],
)
def test_bad_config_is_refused(text: str, words: str) -> None:
    with pytest.raises(MalformedError, match=words):
        config_from_toml(tomllib.loads(text))


def test_overrides() -> None:
    config = config_from_toml({"sequencer": {"flush_interval_ms": 50, "lease_ttl_seconds": 2}, "log": {"origin": "x"}})
    assert (config.flush_interval_ms, config.lease_ttl_seconds, config.origin) == (50, 2.0, "x")


def test_a_rate_limit_of_zero_means_off_but_other_zeros_and_negatives_are_refused() -> None:
    text = "[limits]\nclient_requests_per_second = 0\nissuer_statements_per_second = 0"
    config = config_from_toml(tomllib.loads(text))
    assert (config.client_requests_per_second, config.issuer_statements_per_second) == (0.0, 0.0)
    for text in ("[limits]\nclient_requests_per_second = -1", "[limits]\nclient_burst = 0"):
        with pytest.raises(MalformedError, match="must be positive"):
            config_from_toml(tomllib.loads(text))


def test_a_witness_is_named_by_its_key_name_unless_told_otherwise() -> None:
    vkey = "witness1.example.org+58da6cf5+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
    config = config_from_toml(tomllib.loads(f"[[witness]]\nurl = 'http://x/'\nvkey = '{vkey}'\n"))
    assert [(w.name, w.url, w.vkey) for w in config.witnesses] == [("witness1.example.org", "http://x", vkey)]
    named = config_from_toml(tomllib.loads(f"[[witness]]\nname = 'w1'\nurl = 'http://x'\nvkey = '{vkey}'\n"))
    assert named.witnesses[0].name == "w1"
