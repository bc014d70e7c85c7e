"""botocore's data files: parsed as botocore parses them, kept, and parsed again when they change."""
from __future__ import annotations

import gzip
import json
import os

import botocore.loaders
import pytest

from envctl.aws import datafiles
from envctl.aws.datafiles import DataFiles, Loader, cache_dir


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return cache_dir()


def no_parsing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("parsed JSON instead of reading the kept copy")

    monkeypatch.setattr(datafiles.json, "loads", refuse)


@pytest.mark.parametrize("name, kind", [("endpoints", None), ("service-2", "ec2"), ("service-2", "s3"),
                                        ("paginators-1", "dynamodb"), ("waiters-2", "ec2")])
def test_data_equals_botocores_own_parsed_and_kept(cache, monkeypatch, name, kind):
    def load(loader):
        return loader.load_data(name) if kind is None else loader.load_service_model(kind, name)

    expected = load(botocore.loaders.Loader())
    parsed = load(botocore.loaders.Loader(file_loader=DataFiles()))
    no_parsing(monkeypatch)
    kept = load(botocore.loaders.Loader(file_loader=DataFiles()))
    for mine in (parsed, kept):
        assert mine == expected and json.dumps(mine) == json.dumps(expected)      # same keys, same order
        assert type(mine) is dict
    assert list(cache.iterdir())                     # kept: the second loader read it


def test_a_changed_file_is_parsed_again(cache, tmp_path):
    source = tmp_path / "model.json"
    source.write_text('{"version": 1}')
    assert DataFiles().load_file(str(tmp_path / "model")) == {"version": 1}
    source.write_text('{"version": 22}')            # another size (and, where the clock allows, time)
    assert DataFiles().load_file(str(tmp_path / "model")) == {"version": 22}


def test_gzipped_files_are_read_and_missing_ones_are_none(cache, tmp_path):
    with gzip.open(tmp_path / "model.json.gz", "wb") as f:
        f.write(b'{"zipped": true}')
    assert DataFiles().load_file(str(tmp_path / "model")) == {"zipped": True}
    assert DataFiles().load_file(str(tmp_path / "absent")) is None


def test_a_damaged_entry_is_parsed_again_and_replaced(cache, tmp_path, monkeypatch):
    (tmp_path / "model.json").write_text('{"ok": 1}')
    DataFiles().load_file(str(tmp_path / "model"))
    [entry] = cache.iterdir()
    entry.write_bytes(b"\x00not marshal")
    assert DataFiles().load_file(str(tmp_path / "model")) == {"ok": 1}
    no_parsing(monkeypatch)
    assert DataFiles().load_file(str(tmp_path / "model")) == {"ok": 1}


def test_an_unwritable_cache_only_costs_the_parse(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))           # a directory cannot be made under it
    (tmp_path / "model.json").write_text('{"ok": 1}')
    assert DataFiles().load_file(str(tmp_path / "model")) == {"ok": 1}
    assert DataFiles().load_file(str(tmp_path / "model")) == {"ok": 1}


def test_other_botocore_versions_are_removed_when_a_version_starts_its_own(cache, tmp_path):
    old = cache.parent / "botocore-1.0.0-py3.11-m4"
    old.mkdir(parents=True)
    (old / "entry").write_bytes(b"")
    unrelated = cache.parent / "something-else"
    unrelated.mkdir()
    (tmp_path / "model.json").write_text("{}")
    DataFiles().load_file(str(tmp_path / "model"))
    assert cache.is_dir() and not old.exists() and unrelated.exists()


def test_the_cache_follows_xdg_cache_home_or_defaults_to_the_home_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir().parent == tmp_path / "envctl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir().parent == tmp_path / "home" / ".cache" / "envctl"
    assert cache_dir().name.startswith(f"botocore-{botocore.__version__}-py")
    assert os.sep not in cache_dir().name


def test_without_a_home_nothing_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(datafiles.os.path, "expanduser", lambda path: path)      # no HOME, no passwd entry
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.json").write_text('{"ok": 1}')
    assert cache_dir() is None
    assert DataFiles().load_file(str(tmp_path / "model")) == {"ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]          # no "~" directory made


# ------------------------------------------------------------------ the list of services

@pytest.mark.parametrize("type_name", ["service-2", "paginators-1", "waiters-2", "endpoint-rule-set-1"])
def test_the_services_listed_are_botocores_listed_and_kept(cache, monkeypatch, type_name):
    expected = botocore.loaders.Loader().list_available_services(type_name)
    assert Loader().list_available_services(type_name) == expected
    builtin = botocore.loaders.Loader.BUILTIN_DATA_PATH
    listdir = os.listdir

    def no_listing_of_builtin(path):
        if path.startswith(builtin):
            raise AssertionError("listed botocore's data directory instead of reading the kept list")
        return listdir(path)

    monkeypatch.setattr(datafiles.os, "listdir", no_listing_of_builtin)
    assert Loader().list_available_services(type_name) == expected


def test_a_service_model_of_the_users_own_is_listed_each_time(cache, tmp_path):
    models = tmp_path / "models"
    assert "envctlmade" not in Loader([str(models)]).list_available_services("service-2")
    (models / "envctlmade" / "2026-12-05").mkdir(parents=True)
    (models / "envctlmade" / "2026-12-05" / "service-2.json").write_text("{}")
    (models / "half" / "2026-12-05").mkdir(parents=True)                 # a version without the file
    listed = Loader([str(models)]).list_available_services("service-2")
    assert "envctlmade" in listed and "half" not in listed and "sqs" in listed
