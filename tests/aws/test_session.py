"""The account check made while discovery sets up (AwsSession.check_account_meanwhile):
no call reaches AWS before it, none at all when it refuses, and every thread hears the refusal.
And the clients built ahead of their first call (AwsSession.prepare_clients)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from botocore.exceptions import UnknownServiceError

from envctl.aws.session import ACCOUNT_CHECK_THREAD, PREPARE_THREAD, AwsAccessError, AwsOptions, AwsSession

OTHER_ACCOUNT = "210987654321"


def session(aws) -> AwsSession:
    return AwsSession(AwsOptions(endpoint_url=aws.endpoint), aws.region)


def test_a_foreign_account_is_refused_in_every_thread_and_no_other_call_is_made(aws):
    s = session(aws)
    s.check_account_meanwhile(OTHER_ACCOUNT, "specs/prod.yaml:3")

    def list_queues(_):
        try:
            s.client("sqs").list_queues()
        except AwsAccessError as e:
            return str(e)
        return "called"

    with ThreadPoolExecutor(6) as pool:
        said = list(pool.map(list_queues, range(6)))

    assert set(said) == {f"the credentials belong to account {aws.account}, but the spec pins account "
                         f"{OTHER_ACCOUNT} at specs/prod.yaml:3; use credentials for {OTHER_ACCOUNT} (--profile) "
                         "or change the spec's account:"}
    with pytest.raises(AwsAccessError):
        s.account_id()
    assert [c.action for c in aws.log.snapshot()] == ["GetCallerIdentity"]


def test_the_right_account_lets_calls_through_after_the_check(aws):
    s = session(aws)
    s.check_account_meanwhile(aws.account)

    s.client("sqs").list_queues()

    assert s.account_id() == aws.account
    assert [c.action for c in aws.log.snapshot()] == ["GetCallerIdentity", "ListQueues"]


def test_clients_are_made_meanwhile_but_handed_out_only_once_the_check_passed(aws, monkeypatch):
    s = session(aws)
    answer = threading.Event()
    read = s._caller_account

    def slow_sts():
        assert threading.current_thread().name == ACCOUNT_CHECK_THREAD
        answer.wait(10)
        return read()

    monkeypatch.setattr(s, "_caller_account", slow_sts)
    s.check_account_meanwhile(aws.account)
    with ThreadPoolExecutor(2) as pool:
        client = pool.submit(s.client, "sqs")
        account = pool.submit(s.account_id)
        # The client is built while STS has not answered (what the overlap is for), not handed out.
        for _ in range(200):
            if "sqs" in s._clients:
                break
            threading.Event().wait(0.01)
        assert "sqs" in s._clients
        assert not client.done() and not account.done()
        answer.set()
        assert client.result(10) is s._clients["sqs"]
        assert account.result(10) == aws.account
    assert [c.action for c in aws.log.snapshot()] == ["GetCallerIdentity"]


def test_without_the_meanwhile_check_clients_do_not_wait(aws):
    s = session(aws)
    s.client("sqs").list_queues()
    assert [c.action for c in aws.log.snapshot()] == ["ListQueues"]


def _slow_sts(s: AwsSession, monkeypatch, events: list) -> threading.Event:
    """STS answers when the returned event is set; `events` records the answer and each client built."""
    answer = threading.Event()
    read, made = s._caller_account, s._made

    def slow_sts():
        answer.wait(10)
        events.append("answered")
        return read()

    def recorded(service):
        if service not in s._clients:
            events.append(f"built {service} on {threading.current_thread().name}")
        return made(service)

    monkeypatch.setattr(s, "_caller_account", slow_sts)
    monkeypatch.setattr(s, "_made", recorded)
    return answer


def test_prepared_clients_are_built_once_the_check_answered_and_make_no_call(aws, monkeypatch):
    s = session(aws)
    events: list = []
    answer = _slow_sts(s, monkeypatch, events)
    s.check_account_meanwhile(aws.account)
    thread = s.prepare_clients(["sqs", "sns"])
    assert thread.name == PREPARE_THREAD
    s._made("iam")                 # discovery's own clients meanwhile: not held up by the preparing thread
    answer.set()
    thread.join(10)

    assert events == ["built iam on MainThread", "answered",
                      f"built sqs on {PREPARE_THREAD}", f"built sns on {PREPARE_THREAD}"]
    prepared = s._clients["sqs"]
    assert s.client("sqs") is prepared          # handed out as made, not built again
    assert [c.action for c in aws.log.snapshot()] == ["GetCallerIdentity"]


def test_no_client_is_prepared_after_a_refusal(aws):
    s = session(aws)
    s.check_account_meanwhile(OTHER_ACCOUNT)
    s.prepare_clients(["sqs", "sns"]).join(10)
    assert s._clients == {}
    with pytest.raises(AwsAccessError):
        s.client("sqs")


def test_a_client_that_cannot_be_prepared_is_reported_where_it_is_needed(aws):
    s = session(aws)
    s.prepare_clients(["no-such-service", "sqs"]).join(10)
    assert list(s._clients) == ["sqs"]          # the next one was still built
    with pytest.raises(UnknownServiceError):
        s.client("no-such-service")
