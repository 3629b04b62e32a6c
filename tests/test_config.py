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


def test_a_witness_is_named_by_its_key_name() -> None:
    vkey = "witness1.example.org+58da6cf5+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
    config = config_from_toml(tomllib.loads(f"[[witness]]\nurl = 'http://x/'\nvkey = '{vkey}'\n"))
    assert [(w.name, w.url, w.vkey) for w in config.witnesses] == [("witness1.example.org", "http://x", vkey)]
    text = f"[[witness]]\nname = 'witness1.example.org'\nurl = 'http://x'\nvkey = '{vkey}'\n"
    named = config_from_toml(tomllib.loads(text))
    assert named.witnesses[0].name == "witness1.example.org"


def test_a_witness_name_that_is_not_its_key_name_is_refused_in_one_line() -> None:
    # Issue 21: the log's `[[witness]] name` was a free label, unrelated to the witness's key name (confusing: the
    # published policy and the status page named it one way, the witness's own `info` another).
    vkey = "witness1.example.org+58da6cf5+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
    with pytest.raises(MalformedError) as caught:
        config_from_toml(tomllib.loads(f"[[witness]]\nname = 'w1'\nurl = 'http://x'\nvkey = '{vkey}'\n"))
    message = str(caught.value)
    assert "\n" not in message
    assert "'w1'" in message and "'witness1.example.org'" in message and "#1" in message


def test_two_witness_tables_with_one_name_are_refused() -> None:
    vkey = "witness1.example.org+58da6cf5+BOpKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
    table = f"[[witness]]\nurl = 'http://x'\nvkey = '{vkey}'\n"
    with pytest.raises(MalformedError, match=r"#2 .*witness1\.example\.org.* already"):
        config_from_toml(tomllib.loads(table + table))
