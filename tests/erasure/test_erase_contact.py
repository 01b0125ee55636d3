"""Erasing one contact through the command line, judged by the sandbox's truth and a byte scan:
its items redacted, its note reported, the other contacts untouched, reruns and crashes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from audit_log import AuditLog
from gladly_archive.attachments import read_attachments
from gladly_sandbox.content import Renderer
from gladly_sandbox.errors import ApiError
from gladly_sandbox.tables import F_REDACTED
from tests._console import says
from tests._scan import traces
from tests.erasure._erasure_world import KEY, ErasureWorld, erasure_world

pytestmark = pytest.mark.integration

_TEXT_KEYS = ("content", "body", "subject")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErasureWorld]:
    with erasure_world(tmp_path_factory.mktemp("contact"), customers=40) as w:
        yield w


@dataclass
class Session:
    """A chat session of a closed conversation, as the sandbox holds it (the truth)."""

    customer_id: str
    conversation_id: str
    session_id: str
    messages: list[str]  # its chat messages' ids
    inside: list[str]  # notes and topic changes within its span
    others: list[str]  # every other item of the customer


def _session_of(item: dict[str, Any]) -> str | None:
    return item.get("sessionId") or item["content"].get("sessionId")


def _text(item: dict[str, Any]) -> str:
    content = item["content"]
    return " ".join(str(content[k]) for k in _TEXT_KEYS if isinstance(content.get(k), str))


def _sessions(world: ErasureWorld) -> list[Session]:
    """Chat sessions of customers with other contacts too, those with a note inside first."""
    org = world.sandbox.org
    found: list[Session] = []
    for cid in org.customer_ids():
        conversations = org.conversation_ids(cid)
        if len(conversations) < 2 or world.customer(cid)["deleted"]:
            continue
        everything = {v: org.list_items(v)[0] for v in conversations}
        for conv, items in everything.items():
            if org.get_conversation(conv)["status"] != "CLOSED":
                continue
            chats = [i for i in items if i["content"]["type"] == "CHAT_MESSAGE"]
            sessions = {_session_of(i) for i in chats}
            if len(sessions) != 1 or not chats:
                continue
            start, end = chats[0]["timestamp"], chats[-1]["timestamp"]
            inside = [
                i["id"]
                for i in items
                if i["content"]["type"] in ("CONVERSATION_NOTE", "TOPIC_CHANGE")
                and start <= i["timestamp"] <= end
            ]
            mine = {i["id"] for i in chats} | set(inside)
            others = [i["id"] for v in everything.values() for i in v if i["id"] not in mine]
            found.append(
                Session(cid, conv, str(sessions.pop()), [i["id"] for i in chats], inside, others)
            )
    with_note = [
        s
        for s in found
        if any(org.get_item(i)["content"]["type"] == "CONVERSATION_NOTE" for i in s.inside)
    ]
    return with_note + [s for s in found if s not in with_note]


def _unique_texts(world: ErasureWorld, ids: list[str]) -> list[str]:
    """Texts of `ids` that no other item of the organisation holds (needles that prove one
    thing: the sandbox's lines are templates that other conversations share)."""
    org = world.sandbox.org
    mine = set(ids)
    theirs = " ".join(
        _text(i)
        for cid in org.customer_ids()
        if not world.customer(cid)["deleted"]
        for v in org.conversation_ids(cid)
        for i in org.list_items(v)[0]
        if i["id"] not in mine
    )
    fields = [org.get_item(i)["content"] for i in ids]
    texts = [str(c[k]) for c in fields for k in _TEXT_KEYS if isinstance(c.get(k), str)]
    return [t for t in texts if len(t) > 12 and t not in theirs]


def _outcomes(world: ErasureWorld, request_ids: set[str]) -> list[dict[str, Any]]:
    return [e for e in world.outcomes() if e["target_id"] in request_ids]


def test_erasing_a_chat_session_redacts_it_and_leaves_the_rest(world: ErasureWorld) -> None:
    org = world.sandbox.org
    session = _sessions(world)[0]
    note = next(
        i for i in session.inside if org.get_item(i)["content"]["type"] == "CONVERSATION_NOTE"
    )
    others_before = {i: org.get_item(i) for i in session.others}
    inside_before = {i: org.get_item(i) for i in session.inside}
    attachments = [
        a for i in session.messages for a in org.get_item(i)["content"].get("attachments") or []
    ]
    gone = _unique_texts(world, session.messages)
    kept = _unique_texts(world, session.others)
    assert gone  # the world has what this test needs
    assert kept
    assert attachments
    args = ("delete", "--customer-id", session.customer_id, "--contact", session.session_id)

    rehearsal = world.cli(*args)
    assert rehearsal.returncode == 0, rehearsal.stderr
    assert all(_text(org.get_item(i)).strip() for i in session.messages)  # nothing changed

    done = world.cli(*args, "--execute")
    assert done.returncode == 0, done.stderr
    for item_id in session.messages:  # the sandbox's own state
        content = org.get_item(item_id)["content"]
        assert content["content"] == "", item_id
        assert not content.get("attachments"), item_id
    assert {i: org.get_item(i) for i in session.others} == others_before
    assert {i: org.get_item(i) for i in session.inside} == inside_before
    outcomes = _outcomes(world, set(session.messages) | set(session.inside))
    assert Counter(e["target_id"] for e in outcomes) == Counter(session.messages + session.inside)
    by_id = {e["target_id"]: e for e in outcomes}
    assert {by_id[i]["outcome"] for i in session.messages} == {"redacted"}
    assert by_id[note]["outcome"] == "not_erasable_via_api"
    assert says(done.stderr, f"item {note}")
    assert says(done.stderr, "not erasable via the API")
    details = " ".join(str(by_id[i]["detail"]) for i in session.messages)
    assert all(a["id"] in details for a in attachments)
    assert "erased with the item" in details
    # Our archive: none of the session's text, names of files or attachment ids; the rest kept.
    ids = [a["id"] for a in attachments]
    assert traces(world.root, gone) == []
    # Attachment ids are what the audit log and the plan name them by; the data holds none.
    data = [p for p in world.root.iterdir() if p.name not in ("_audit", "_plans")]
    assert [t for d in data for t in traces(d, ids)] == []
    assert len(traces(world.root, kept)) > 0
    erased = {a["id"] for a in attachments}
    rows = read_attachments(world.root).to_pylist()
    assert not erased & {r["attachment_id"] for r in rows}
    redacted = [r for r in rows if r["item_id"] in session.messages]
    assert len(redacted) == len(attachments)  # still counted, with sizes and types
    assert {(r["attachment_id"], r["filename"]) for r in redacted} == {(None, None)}

    before = AuditLog(world.root, key=KEY).events().num_rows
    again = world.cli(*args, "--execute")
    assert again.returncode == 0, again.stderr
    assert _outcomes(world, set(session.messages) | set(session.inside)) == outcomes
    events = AuditLog(world.root, key=KEY).events().to_pylist()[before:]
    assert not [e for e in events if e["step"] in ("act", "archive_purge")]


def test_a_contact_that_does_not_resolve_changes_nothing(world: ErasureWorld) -> None:
    session = _sessions(world)[1]
    before = AuditLog(world.root, key=KEY).events().num_rows
    plans = sorted((world.root / "_plans").glob("*")) if (world.root / "_plans").exists() else []
    result = world.cli(
        "delete", "--customer-id", session.customer_id, "--contact", "NoSuchContact000000000"
    )
    assert result.returncode == 2
    assert says(result.stderr, "--contact NoSuchContact000000000: no conversation")
    assert AuditLog(world.root, key=KEY).events().num_rows == before
    after = sorted((world.root / "_plans").glob("*")) if (world.root / "_plans").exists() else []
    assert after == plans
    assert all(_text(world.sandbox.org.get_item(i)).strip() for i in session.messages)


# A contact's audit events with one worker: run_started 1, then per item hold_check, act
# intent and result, verify intent and result, outcome. 3 kills right after the first
# redaction was announced (the rerun's recovery must find out whether it happened); 5 after
# it was answered, before its read-back; 10 mid-request, the second item's call answered.
@pytest.mark.parametrize(("kill_at", "which"), [(3, 2), (5, 3), (10, 4)])
def test_a_kill_mid_contact_is_finished_once_by_the_rerun(
    world: ErasureWorld, kill_at: int, which: int
) -> None:
    org = world.sandbox.org
    session = _sessions(world)[which]
    others_before = {i: org.get_item(i) for i in session.others}
    gone = _unique_texts(world, session.messages)
    args = ("delete", "--email", str(world.customer(session.customer_id)["emails"][0]["original"]))
    one = ("--contact", session.session_id, "--workers", "1", "--execute")
    killed = world.cli(*args, *one, kill_at=kill_at)
    assert killed.returncode < 0  # SIGKILLed
    rerun = world.cli(*args, *one)
    assert rerun.returncode == 0, rerun.stderr
    for item_id in session.messages:
        assert org.get_item(item_id)["content"]["content"] == "", item_id
    assert {i: org.get_item(i) for i in session.others} == others_before
    final = [
        e
        for e in _outcomes(world, set(session.messages))
        if e["outcome"] in ("redacted", "already_absent", "not_erasable_via_api")
    ]
    assert sorted(e["target_id"] for e in final) == sorted(session.messages)
    assert {e["outcome"] for e in final} == {"redacted"}
    assert traces(world.root, gone) == []


def _conversation_with(world: ErasureWorld, kind: str, count: int) -> tuple[str, str, list[str]]:
    """(customer, conversation, ids of its `kind` items) of a closed conversation with at
    least `count` of them, whose customer has other conversations too."""
    org = world.sandbox.org
    for cid in org.customer_ids():
        conversations = org.conversation_ids(cid)
        if world.customer(cid)["deleted"] or len(conversations) < 2:
            continue
        for conv in conversations:
            items = org.list_items(conv)[0]
            ids = [i["id"] for i in items if i["content"]["type"] == kind]
            if len(ids) >= count and org.get_conversation(conv)["status"] == "CLOSED":
                return cid, conv, ids
    raise AssertionError(f"the world has no conversation with {count} {kind} items")


def _customer_items(world: ErasureWorld, cid: str) -> dict[str, dict[str, Any]]:
    org = world.sandbox.org
    return {i["id"]: i for v in org.conversation_ids(cid) for i in org.list_items(v)[0]}


def test_erasing_one_call_removes_its_recording_and_leaves_the_other_call(
    world: ErasureWorld,
) -> None:
    org = world.sandbox.org
    cid, _conv, calls = _conversation_with(world, "PHONE_CALL", 2)
    erased, kept = calls[0], calls[1]
    assert org.get_item(erased)["content"]["recordingStatus"] == "AVAILABLE"
    before = _customer_items(world, cid)
    done = world.cli("delete", "--customer-id", cid, "--contact", erased, "--execute")
    assert done.returncode == 0, done.stderr
    content = org.get_item(erased)["content"]
    assert content["recordingStatus"] == "DELETED"
    assert "recordingUrl" not in content
    with pytest.raises(ApiError, match="404 not_exist"):
        org.recording(erased)
    assert org.recording(kept)  # the other call's recording is still there
    after = _customer_items(world, cid)
    changed = {i for i in before if before[i] != after[i]}
    assert changed == {erased}
    [outcome] = _outcomes(world, {erased})
    assert outcome["outcome"] == "redacted"


def test_erasing_an_email_exchange_by_one_of_its_messages(world: ErasureWorld) -> None:
    org = world.sandbox.org
    cid, conv, emails = _conversation_with(world, "EMAIL", 3)
    before = _customer_items(world, cid)
    done = world.cli("delete", "--customer-id", cid, "--contact", emails[1], "--execute")
    assert done.returncode == 0, done.stderr
    for item_id in emails:  # the whole thread, named by its second message
        content = org.get_item(item_id)["content"]
        assert content["content"] == "", item_id
        assert content["subject"] == "", item_id
    after = _customer_items(world, cid)
    changed = {i for i in before if before[i] != after[i]}
    assert changed == set(emails)  # no other conversation's item, nor this one's notes
    outcomes = _outcomes(world, set(emails))
    assert sorted(e["target_id"] for e in outcomes) == sorted(emails)
    assert {e["outcome"] for e in outcomes} == {"redacted"}
    assert all(org.get_item(i)["conversationId"] == conv for i in emails)


def test_a_rerun_after_redaction_took_the_session_id_says_the_request_is_done(
    world: ErasureWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Gladly does not document whether a redacted chat message keeps its sessionId: here the
    # sandbox drops it, so after the first run nothing live names the contact any more.
    shown = Renderer.item

    def forgetting(self: Renderer, row: int) -> dict[str, Any]:
        out = shown(self, row)
        if self.data.items.flags[row] & F_REDACTED:
            out.pop("sessionId", None)
            out["content"].pop("sessionId", None)
        return out

    monkeypatch.setattr(Renderer, "item", forgetting)
    org = world.sandbox.org
    session = _sessions(world)[5]
    args = ("delete", "--customer-id", session.customer_id, "--contact", session.session_id)
    done = world.cli(*args, "--execute")
    assert done.returncode == 0, done.stderr
    assert all(_text(org.get_item(i)) == "" for i in session.messages)
    assert all(_session_of(org.get_item(i)) is None for i in session.messages)
    mine = set(session.messages) | set(session.inside)
    outcomes = _outcomes(world, mine)
    before = AuditLog(world.root, key=KEY).events().num_rows

    again = world.cli(*args, "--execute")
    assert again.returncode == 0, again.stderr
    assert not says(again.stderr, "no conversation of the customer")
    assert says(again.stdout + again.stderr, f"finished by an earlier run │ {len(mine)}")
    assert _outcomes(world, mine) == outcomes  # one outcome per item, the first run's
    events = AuditLog(world.root, key=KEY).events().to_pylist()[before:]
    assert events  # the rerun is audited
    assert not [e for e in events if e["step"] in ("act", "outcome")]

    # A rehearsal is never evidence: a request only rehearsed, whose contact then vanished
    # (redacted by someone else), is not remembered as done: it stops, changing nothing.
    other = _sessions(world)[6]
    asked = ("delete", "--customer-id", other.customer_id, "--contact", other.session_id)
    assert world.cli(*asked).returncode == 0  # the rehearsal
    for item_id in other.messages:
        org.redact_item(item_id)
    before = AuditLog(world.root, key=KEY).events().num_rows
    refused = world.cli(*asked, "--execute")
    assert refused.returncode == 2, refused.stderr
    assert says(refused.stderr, f"--contact {other.session_id}: no conversation")
    assert AuditLog(world.root, key=KEY).events().num_rows == before
