"""A run configuration with a value of the wrong type is refused with the key and the value,
never a traceback from deep inside the run (``pipelines.config.load_config`` on YAML files)."""

from __future__ import annotations

import pytest

from pipelines.config import load_config
from popsync.errors import PopsyncError


def _config(tmp_path, text: str):
    path = tmp_path / "popsync.yaml"
    path.write_text(text, "utf-8")
    return path


def _with_sources(yaml_text: str) -> str:
    """``yaml_text`` after the sections of both sources it does not give itself."""
    sections = {"registry": "registry:\n  source: registry.csv\n",
                "population": "population:\n  source: population.csv\n"}
    given = {line.split(":")[0] for line in yaml_text.splitlines() if not line.startswith(" ")}
    return "".join(text for name, text in sections.items() if name not in given) + yaml_text


@pytest.mark.parametrize(
    ("yaml_text", "key", "shown"),
    [
        ("province_schemes: 63\n", "province_schemes", "63"),
        ("province_schemes: '63'\n", "province_schemes", "'63'"),
        ("province_schemes: ['63', '63']\n", "province_schemes", "['63', '63']"),
        ("registry:\n  source: registry.csv\n  encoding: 123\n", "registry.encoding", "123"),
        ("registry:\n  source: registry.csv\n  encoding: klingon-8\n", "registry.encoding",
         "'klingon-8'"),
        ("population:\n  source: population.csv\n  delimiter: 5\n", "population.delimiter",
         "5"),
        ("population:\n  source: population.csv\n  delimiter: ';;'\n", "population.delimiter",
         "';;'"),
        ("output:\n  db_url: notaurl\n", "output.db_url", "'notaurl'"),
        ("output:\n  db_url: nosuchdb://host/db\n", "output.db_url", "'nosuchdb://host/db'"),
        ("output:\n  dir: 5\n", "output.dir", "5"),
        ("registry:\n  source: 5\n", "registry.source", "5"),
        ("registry:\n  source: db\n  format: sql\n  table: 5\n", "registry.table", "5"),
        ("registry:\n  source: db\n  format: sql\n  query: [1]\n", "registry.query", "[1]"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_key_and_value(tmp_path, yaml_text, key, shown):
    path = _config(tmp_path, _with_sources(yaml_text))
    with pytest.raises(PopsyncError) as raised:
        load_config(path)
    message = str(raised.value)
    assert key in message and f"not {shown}" in message, message
    assert str(path) in message


def test_the_types_it_asks_for_load(tmp_path):
    path = _config(tmp_path, _with_sources(
        "province_schemes: [63]\n"
        "registry:\n  source: registry.csv\n  encoding: utf-8-sig\n  delimiter: ';'\n"
        "output:\n  dir: out\n  db_url: postgresql+psycopg://popsync@db:5432/popsync\n"
    ))
    config = load_config(path)
    assert config.province_schemes == ("63",)
    assert (config.registry.encoding, config.registry.delimiter) == ("utf-8-sig", ";")
    assert config.population.delimiter == ","
    assert config.db_url == "postgresql+psycopg://popsync@db:5432/popsync"
    assert config.out_dir == (tmp_path / "out").resolve()


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("workers: two\n", "workers"),
        ("partition:\n  max_rows: 1e5\n", "partition.max_rows"),
        ("alerts:\n  to: night-watch@vss.example\n", "alerts.to"),
        ("alerts:\n  rate_drop_points: -1\n", "alerts.rate_drop_points"),
        ("matching:\n  max_block_size: big\n", "max_block_size"),
        ("registry:\n  source: r.csv\n  mapping:\n    province_code: {column: T, zfill: two}\n",
         "registry.mapping.province_code.zfill"),
    ],
)
def test_popsync_run_says_one_line_naming_file_and_key(tmp_path, capsys, yaml_text, key):
    from pipelines import cli

    path = _config(tmp_path, _with_sources(yaml_text))
    assert cli.main(["run", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and key in err and str(path) in err, err
