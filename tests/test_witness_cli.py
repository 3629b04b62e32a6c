"""`tlog-witness serve` / `info`: key file made once with mode 0600, unsafe keys refused, bad input → one line."""

import json
import stat
from pathlib import Path

import httpx
import pytest
from witness_helpers import WitnessProcess, cli, tiny_log, write_config, write_key

from tlogcore.cosignature import CosignatureV1Signer
from tlogcore.keys import parse_signer_key


def assert_one_line_error(result: object, *needles: str) -> None:
    code, err = result.returncode, result.stderr  # type: ignore[attr-defined]
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_first_run_makes_an_owner_only_key_then_reuses_it(tmp_path: Path) -> None:
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "witness.cli.test", [(log.origin, log.vkey)])
    data = tmp_path / "fresh" / "data"
    with WitnessProcess(data, config) as witness:
        first_vkey = witness.vkey
        assert httpx.get(f"{witness.url}/healthz").status_code == 200
    key_file = data / "witness.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    seed_signer = parse_signer_key(key_file.read_text().strip())
    assert CosignatureV1Signer("witness.cli.test", seed_signer.seed, lambda: 1).verifier().vkey == first_vkey
    assert first_vkey.startswith("witness.cli.test+")
    with WitnessProcess(data, config) as witness:
        assert witness.vkey == first_vkey  # the same key, not a new one
    info = cli("info", "--data", str(data))
    assert info.returncode == 0, info.stderr
    assert info.stdout == f"name witness.cli.test\nvkey {first_vkey}\n"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660], ids=oct)
def test_a_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "witness.cli.test", [(log.origin, log.vkey)])
    write_key(tmp_path / "data", "witness.cli.test", b"\x05" * 32)
    (tmp_path / "data" / "witness.key").chmod(mode)
    assert_one_line_error(
        cli("serve", "--data", str(tmp_path / "data"), "--config", str(config)), "chmod 600", f"{mode:04o}"
    )
    assert_one_line_error(cli("info", "--data", str(tmp_path / "data")), "chmod 600")


def test_a_key_made_for_another_name_is_refused(tmp_path: Path) -> None:
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "witness.cli.test", [(log.origin, log.vkey)])
    write_key(tmp_path / "data", "another.name", b"\x05" * 32)
    assert_one_line_error(
        cli("serve", "--data", str(tmp_path / "data"), "--config", str(config)), "'another.name'", "'witness.cli.test'"
    )


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_key(data, "witness.cli.test", b"\x05" * 32)
    key_file = data / "witness.key"
    key_file.write_text(key_file.read_text().replace("+", "+x", 3))
    assert_one_line_error(cli("info", "--data", str(data)), "key file")
    assert_one_line_error(cli("info", "--data", str(tmp_path / "missing")), "does not exist", "tlog-witness init")


def bad_configs(vkey: str, origin: str) -> dict[str, str]:
    return {
        "not TOML": "name = \n",
        "no log": 'name = "w.test"\n',
        "unknown key": f'name = "w.test"\ncolour = "red"\n[[log]]\norigin = "{origin}"\nvkey = "{vkey}"\n',
        "vkey name is not the origin": f'[[log]]\norigin = "other.example/log"\nvkey = "{vkey}"\n',
        "bad vkey": f'[[log]]\norigin = "{origin}"\nvkey = "{vkey[:-2]}"\n',
        "bad name": f'name = "has space"\n[[log]]\norigin = "{origin}"\nvkey = "{vkey}"\n',
        "bad listen": f'listen = "localhost"\n[[log]]\norigin = "{origin}"\nvkey = "{vkey}"\n',
    }


@pytest.mark.parametrize("case", list(bad_configs("v", "o")))
def test_bad_config_is_one_line(tmp_path: Path, case: str) -> None:
    log = tiny_log()
    config = tmp_path / "w.toml"
    config.write_text(bad_configs(log.vkey, log.origin)[case])
    assert_one_line_error(cli("serve", "--data", str(tmp_path / "data"), "--config", str(config)), "config")
    assert not (tmp_path / "data").exists()  # nothing created for a config that does not load


def test_bad_command_line_is_refused(tmp_path: Path) -> None:
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "witness.cli.test", [(log.origin, log.vkey)])
    data = str(tmp_path / "data")
    for listen in ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:070", "127.0.0.1:99999", ":80"]:
        assert_one_line_error(cli("serve", "--data", data, "--config", str(config), "--listen", listen), "listen")
    assert_one_line_error(cli("serve", "--data", data, "--config", str(tmp_path / "nope.toml")), "nope.toml")
    result = cli("serve", "--data", data)  # click's own usage error
    assert result.returncode == 2 and "Traceback" not in result.stderr and "--config" in result.stderr


def test_a_busy_port_or_an_unusable_database_stops_cleanly(tmp_path: Path) -> None:
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "witness.cli.test", [(log.origin, log.vkey)])
    with WitnessProcess(tmp_path / "one", config) as running:
        busy = cli(
            "serve", "--data", str(tmp_path / "two"), "--config", str(config), "--listen", f"127.0.0.1:{running.port}"
        )
        assert busy.returncode != 0 and "Traceback" not in busy.stderr
        assert "address already in use" in busy.stderr
    (tmp_path / "three" / "witness.sqlite").mkdir(parents=True)  # a directory where the database should be
    assert_one_line_error(
        cli("serve", "--data", str(tmp_path / "three"), "--config", str(config)), "cannot open the database"
    )


def test_init_makes_the_key_before_the_first_run_and_info_prints_json(tmp_path: Path) -> None:
    data = tmp_path / "w1"
    missing = cli("info", "--data", str(data))
    assert_one_line_error(missing, "does not exist", "tlog-witness init")
    made = cli("init", "--data", str(data), "--name", "w1.example.org", "--json")
    assert made.returncode == 0, made.stderr
    identity = json.loads(made.stdout)
    assert identity["name"] == "w1.example.org" and identity["vkey"].startswith("w1.example.org+")
    assert stat.S_IMODE((data / "witness.key").stat().st_mode) == 0o600
    again = cli("init", "--data", str(data), "--name", "w1.example.org", "--json")  # never a second key
    assert json.loads(again.stdout) == identity
    assert json.loads(cli("info", "--data", str(data), "--json").stdout) == identity
    assert cli("info", "--data", str(data)).stdout == f"name w1.example.org\nvkey {identity['vkey']}\n"
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "w1.example.org", [(log.origin, log.vkey)])
    with WitnessProcess(data, config) as witness:
        assert witness.vkey == identity["vkey"]  # serve uses the key init made


def test_init_takes_the_name_from_the_config_and_refuses_a_renamed_key(tmp_path: Path) -> None:
    log = tiny_log()
    config = write_config(tmp_path / "w.toml", "w2.example.org", [(log.origin, log.vkey)])
    made = cli("init", "--data", str(tmp_path / "w2"), "--config", str(config), "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["name"] == "w2.example.org"
    assert_one_line_error(cli("init", "--data", str(tmp_path / "w2"), "--name", "other.example.org"), "other")
    assert_one_line_error(cli("init", "--data", str(tmp_path / "w3")), "exactly one of --name")
    assert_one_line_error(cli("init", "--data", str(tmp_path / "w3"), "--name", "bad name"), "bad name")
    assert not (tmp_path / "w3" / "witness.key").exists()
