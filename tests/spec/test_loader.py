"""The loader: YAML with a file:line for every value, and the `extends:` overlay."""
from __future__ import annotations

from pathlib import Path

import pytest

from envctl.spec.errors import Problem, SpecError
from envctl.spec.loader import load_environment, read_file
from envctl.spec.validate import environments, load, spec_path
from tests.spec.specfiles import write_specs

REPO_SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.fixture
def specs(tmp_path, monkeypatch) -> callable:
    """write(files) → the specs folder; paths are shown relative to tmp_path, as `specs/…`."""
    monkeypatch.chdir(tmp_path)
    return lambda files: write_specs(tmp_path, files)


# ------------------------------------------------------------------ line marks

def test_every_key_and_list_item_has_the_line_it_was_written_on(specs):
    folder = specs({"qa.yaml": """\
        project: acme
        region: eu-north-1
        queues:
          work:
            visibility_timeout_s: 60

          imports: {}
        topics:
          alarms:
            subscriptions:
              - {email: ops@example.com}
              - sms: "+358401234567"
        """})

    data, marks = read_file(folder / "qa.yaml")

    assert data["queues"] == {"work": {"visibility_timeout_s": 60}, "imports": {}}
    assert marks[("project",)] == ("specs/qa.yaml", 1)
    assert marks[("queues", "work")] == ("specs/qa.yaml", 4)
    assert marks[("queues", "work", "visibility_timeout_s")] == ("specs/qa.yaml", 5)
    assert marks[("queues", "imports")] == ("specs/qa.yaml", 7)
    assert marks[("topics", "alarms", "subscriptions", 0)] == ("specs/qa.yaml", 11)
    assert marks[("topics", "alarms", "subscriptions", 1)] == ("specs/qa.yaml", 12)
    assert marks[("topics", "alarms", "subscriptions", 1, "sms")] == ("specs/qa.yaml", 12)


def test_a_path_without_its_own_mark_takes_its_nearest_parent(specs):
    folder = specs({"qa.yaml": "project: acme\nregion: eu-north-1\nqueues:\n  work: {}\n"})

    doc = load_environment(folder / "qa.yaml")

    assert doc.mark(("queues", "work", "delay_s")) == ("specs/qa.yaml", 4)
    assert doc.mark(("nothing", "here")) == ("specs/qa.yaml", 1)


def test_duplicate_keys_are_refused_at_the_second_one(specs):
    folder = specs({"qa.yaml": "project: acme\nregion: eu-north-1\nqueues:\n  work: {}\n  work: {delay_s: 5}\n"})

    with pytest.raises(SpecError) as e:
        read_file(folder / "qa.yaml")

    assert e.value.problems == [Problem("specs/qa.yaml", 5, "queues.work", "duplicate key (already set above)")]


def test_yaml_values_keep_their_yaml_types(specs):
    folder = specs({"qa.yaml": "a: '4711'\nb: 4711\nc: true\nd: ~\ne: 1.5\n"})

    data, _ = read_file(folder / "qa.yaml")

    assert data == {"a": "4711", "b": 4711, "c": True, "d": None, "e": 1.5}


def test_a_file_changed_since_it_was_read_is_read_again(specs):
    folder = specs({"qa.yaml": "project: acme\nregion: eu-north-1\n"})
    first, _ = read_file(folder / "qa.yaml")
    (folder / "qa.yaml").write_text("project: acme\nregion: eu-west-1\n", encoding="utf-8")

    again, _ = read_file(folder / "qa.yaml")

    assert (first["region"], again["region"]) == ("eu-north-1", "eu-west-1")


def test_a_broken_file_is_reported_every_time_it_is_read(specs):
    folder = specs({"qa.yaml": "project: acme\nproject: other\n"})

    for _ in range(2):
        with pytest.raises(SpecError) as e:
            read_file(folder / "qa.yaml")
        assert e.value.problems == [Problem("specs/qa.yaml", 2, "project", "duplicate key (already set above)")]


def test_a_missing_file_is_a_problem_not_an_exception_of_python(specs):
    folder = specs({})

    with pytest.raises(SpecError) as e:
        read_file(folder / "qa.yaml")

    assert str(e.value) == "specs/qa.yaml: file not found"


# ------------------------------------------------------------------ extends

BASE = """\
    project: acme
    region: eu-north-1
    tags:
      CostCenter: "4711"
      Owner: platform
    network:
      cidr: 10.20.0.0/16
      zones: 2
      tiers:
        public: {prefix: 24, internet: true}
    queues:
      work:
        visibility_timeout_s: 300
        dead_letter: {max_receives: 5}
      imports: {}
    topics:
      alarms:
        subscriptions:
          - {email: ops@example.com}
          - {sms: "+358401234567"}
    """


def test_maps_merge_key_by_key(specs):
    folder = specs({"base.yaml": BASE, "qa.yaml": """\
        extends: base.yaml
        network:
          cidr: 10.30.0.0/16
        queues:
          work:
            visibility_timeout_s: 60
        """})

    doc = load_environment(folder / "qa.yaml")

    assert doc.data["network"] == {"cidr": "10.30.0.0/16", "zones": 2, "tiers": {"public": {"prefix": 24,
                                                                                            "internet": True}}}
    assert doc.data["queues"]["work"] == {"visibility_timeout_s": 60, "dead_letter": {"max_receives": 5}}
    assert doc.data["queues"]["imports"] == {}
    assert doc.data["tags"] == {"CostCenter": "4711", "Owner": "platform"}
    assert "extends" not in doc.data


def test_merged_keys_keep_the_base_order_and_new_keys_come_last(specs):
    folder = specs({"base.yaml": BASE, "qa.yaml": "extends: base.yaml\naccount: '123456789012'\nqueues:\n"
                                                  "  jobs: {}\n  work: {delay_s: 1}\n"})

    doc = load_environment(folder / "qa.yaml")

    assert list(doc.data) == ["project", "region", "tags", "network", "queues", "topics", "account"]
    assert list(doc.data["queues"]) == ["work", "imports", "jobs"]


def test_lists_are_replaced_whole(specs):
    folder = specs({"base.yaml": BASE, "qa.yaml": """\
        extends: base.yaml
        topics:
          alarms:
            subscriptions:
              - {email: qa@example.com}
        """})

    doc = load_environment(folder / "qa.yaml")

    assert doc.data["topics"]["alarms"]["subscriptions"] == [{"email": "qa@example.com"}]
    assert doc.mark(("topics", "alarms", "subscriptions", 0)) == ("specs/qa.yaml", 5)
    assert ("topics", "alarms", "subscriptions", 1) not in doc.marks     # the base's second item is gone


def test_null_removes_a_key_or_a_whole_resource(specs):
    folder = specs({"base.yaml": BASE, "qa.yaml": """\
        extends: base.yaml
        tags:
          Owner: null
        queues:
          work:
            dead_letter: null
          imports: null
        topics: null
        nothing: null
        """})

    doc = load_environment(folder / "qa.yaml")

    assert doc.data["tags"] == {"CostCenter": "4711"}
    assert doc.data["queues"] == {"work": {"visibility_timeout_s": 300}}
    assert "topics" not in doc.data
    assert "nothing" not in doc.data
    assert not [p for p in doc.marks if p[:1] == ("topics",) or p[:2] == ("queues", "imports")]


def test_marks_point_at_the_file_and_line_that_wrote_the_value(specs):
    folder = specs({"base.yaml": BASE, "qa.yaml": """\
        extends: base.yaml
        network:
          cidr: 10.30.0.0/16
        queues:
          work:
            visibility_timeout_s: 60
          jobs: {fifo: true}
        """})

    doc = load_environment(folder / "qa.yaml")

    assert doc.mark(("network", "cidr")) == ("specs/qa.yaml", 3)
    assert doc.mark(("network", "zones")) == ("specs/base.yaml", 8)
    assert doc.mark(("network", "tiers", "public", "prefix")) == ("specs/base.yaml", 10)
    assert doc.mark(("queues", "work", "visibility_timeout_s")) == ("specs/qa.yaml", 6)
    assert doc.mark(("queues", "work", "dead_letter", "max_receives")) == ("specs/base.yaml", 14)
    assert doc.mark(("queues", "jobs", "fifo")) == ("specs/qa.yaml", 7)
    assert doc.mark(("tags", "Owner")) == ("specs/base.yaml", 5)
    assert doc.mark(()) == ("specs/qa.yaml", 1)


def test_a_scalar_overridden_by_a_map_takes_the_overlays_marks(specs):
    folder = specs({"base.yaml": "project: acme\nregion: eu-north-1\nqueues: {}\n",
                    "qa.yaml": "extends: base.yaml\nqueues:\n  work:\n    delay_s: 5\n"})

    doc = load_environment(folder / "qa.yaml")

    assert doc.data["queues"] == {"work": {"delay_s": 5}}
    assert doc.mark(("queues", "work", "delay_s")) == ("specs/qa.yaml", 4)


def test_extends_chains_merge_from_the_root_down(specs):
    folder = specs({
        "shared/root.yaml": "project: acme\nregion: eu-north-1\nqueues:\n  work: {delay_s: 1, retention_s: 600}\n",
        "base.yaml": "extends: shared/root.yaml\nqueues:\n  work: {delay_s: 2, receive_wait_s: 5}\n",
        "qa.yaml": "extends: base.yaml\nqueues:\n  work: {delay_s: 3}\n",
    })

    doc = load_environment(folder / "qa.yaml")

    assert doc.data["queues"]["work"] == {"delay_s": 3, "retention_s": 600, "receive_wait_s": 5}
    assert doc.files == ["specs/qa.yaml", "specs/base.yaml", "specs/shared/root.yaml"]
    assert doc.mark(("queues", "work", "retention_s")) == ("specs/shared/root.yaml", 4)
    assert doc.mark(("queues", "work", "receive_wait_s")) == ("specs/base.yaml", 3)
    assert doc.mark(("queues", "work", "delay_s")) == ("specs/qa.yaml", 3)


def test_extends_is_relative_to_the_file_that_says_it(specs):
    folder = specs({
        "teams/a/qa.yaml": "extends: ../../base.yaml\nregion: eu-west-1\n",
        "base.yaml": "project: acme\nregion: eu-north-1\n",
    })

    doc = load_environment(folder / "teams" / "a" / "qa.yaml")

    assert doc.data == {"project": "acme", "region": "eu-west-1"}


def test_an_extends_cycle_is_a_problem(specs):
    folder = specs({"qa.yaml": "extends: mid.yaml\n", "mid.yaml": "extends: qa.yaml\n"})

    with pytest.raises(SpecError) as e:
        load_environment(folder / "qa.yaml")

    assert e.value.problems == [Problem("specs/mid.yaml", 1, "extends",
                                        "extends cycle: specs/qa.yaml -> specs/mid.yaml -> specs/qa.yaml")]


def test_extends_of_a_missing_file_is_a_problem(specs):
    folder = specs({"qa.yaml": "# qa\nextends: bsae.yaml\n"})

    with pytest.raises(SpecError) as e:
        load_environment(folder / "qa.yaml")

    assert e.value.problems == [Problem("specs/qa.yaml", 2, "extends", "file 'bsae.yaml' not found next to qa.yaml")]


def test_a_problem_in_a_parent_file_names_the_parent(specs):
    folder = specs({"qa.yaml": "extends: base.yaml\n", "base.yaml": "project: acme\nproject: other\n"})

    with pytest.raises(SpecError) as e:
        load_environment(folder / "qa.yaml")

    assert str(e.value) == "specs/base.yaml:2: project: duplicate key (already set above)"


# ------------------------------------------------------------------ environments

def test_environments_are_the_files_no_other_file_extends(specs):
    folder = specs({"base.yaml": BASE, "qa.yaml": "extends: base.yaml\n", "prod.yml": "extends: base.yaml\n",
                    "preview.yaml": "extends: qa.yaml\n", "broken.yaml": "a: [\n"})

    assert environments(folder) == ["broken", "preview", "prod"]


def test_a_cycle_nobody_else_reaches_is_listed_once_so_that_it_gets_reported(specs):
    folder = specs({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"})

    assert environments(folder) == ["a"]


def test_environment_name_is_the_file_name(specs):
    folder = specs({"base.yaml": BASE, "pr-42.yaml": "extends: base.yaml\n"})

    spec = load(folder, "pr-42")

    assert spec.name == "pr-42"
    assert spec.file == "specs/pr-42.yaml"
    assert spec.document.files == ["specs/pr-42.yaml", "specs/base.yaml"]


def test_an_unknown_environment_suggests_the_close_one(specs):
    folder = specs({"base.yaml": BASE, "qa.yaml": "extends: base.yaml\n", "prod.yaml": "extends: base.yaml\n"})

    with pytest.raises(SpecError) as e:
        spec_path(folder, "prdo")

    assert str(e.value) == "specs/prdo.yaml: no spec for environment 'prdo'; did you mean 'prod'?"


def test_the_repository_examples_merge_as_documented(monkeypatch):
    monkeypatch.chdir(REPO_SPECS.parent)

    qa = load_environment(REPO_SPECS / "qa.yaml")
    prod = load_environment(REPO_SPECS / "prod.yaml")

    assert qa.data["network"]["cidr"] == "10.30.0.0/16"
    assert qa.data["network"]["nat"] == "single"
    assert qa.data["applications"]["orders"]["capacity"] == {"min": 1, "desired": 1, "max": 2}
    assert qa.data["applications"]["orders"]["instance_type"] == "t3.small"
    assert prod.data["network"]["nat"] == "per_zone"
    assert [s for s in prod.data["topics"]["alarms"]["subscriptions"]] == [
        {"email": "ops@example.com"}, {"email": "oncall@example.com"}, {"sms": "+358401234567"}]
    assert qa.mark(("network", "cidr")) == ("specs/qa.yaml", 5)
    assert qa.mark(("network", "nat")) == ("specs/base.yaml", 13)
