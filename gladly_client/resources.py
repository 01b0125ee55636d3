"""Gladly's resources as nouns: customers, conversations, items, exports, the org directory."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from gladly_client.constants import HEADER_LIMITED_DATA
from gladly_client.errors import MalformedResponseError
from gladly_client.models import (
    Agent,
    Conversation,
    ConversationList,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Event,
    ExportJob,
    ExportSchedule,
    Inbox,
    Item,
    ItemList,
    Report,
    Topic,
    VoiceTranscript,
)
from gladly_client.throttle import ReportGate
from gladly_client.transport import Download, HTTPResult, Transport, iter_file_lines

M = TypeVar("M", bound=BaseModel)

_CUSTOMER = "/customer-profiles/{customer_id}"
_CUSTOMERS = "/customer-profiles"
_CUSTOMER_CONVERSATIONS = "/customers/{customer_id}/conversations"
_CONVERSATION = "/conversations/{conversation_id}"
_CONVERSATION_ITEMS = "/conversations/{conversation_id}/items"
_CONVERSATION_TOPICS = "/conversations/{conversation_id}/topics"
_ITEM = "/conversation-items/{item_id}"
_ITEM_REDACT = "/conversation-items/{item_id}/redact"
_ITEM_TRANSCRIPT = "/conversation-items/{item_id}/voice-transcript"
_EXPORT_SCHEDULES = "/export/schedules"
_EXPORT_JOBS = "/export/jobs"
_EXPORT_JOB = "/export/jobs/{job_id}"
_EXPORT_FILE = "/export/jobs/{job_id}/files/{filename}"
_AGENTS = "/agents"
_TOPICS = "/topics"
_INBOXES = "/inboxes"
_REPORTS = "/reports"
_EVENTS = "/events"


def _one(model: type[M]) -> Callable[[HTTPResult], M]:
    """A body parser for one `model`; run by the transport inside its retried unit."""

    def parse(result: HTTPResult) -> M:
        return model.model_validate_json(result.body)

    return parse


@cache
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _many(model: type[M]) -> Callable[[HTTPResult], list[M]]:
    """A body parser for a JSON array of `model`."""
    adapter = _list_adapter(model)

    def parse(result: HTTPResult) -> list[M]:
        return adapter.validate_json(result.body)

    return parse


def _truncated(headers: Mapping[str, str]) -> bool:
    # The header's value is undocumented; Gladly is believed to send "true" when a list is cut.
    value = headers.get(HEADER_LIMITED_DATA)
    return value is not None and value.strip().lower() not in ("", "false", "0", "no")


def _entry(entry: BaseModel) -> dict[str, Any]:
    """One email or phone as Gladly takes it in a PATCH: camelCase, only the fields it has."""
    return entry.model_dump(by_alias=True, exclude_none=True)


def _require_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty Gladly id")
    return value


class CustomersResource:
    """Customer profiles: find, get, delete."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def find(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        external_id: str | None = None,
    ) -> list[Customer]:
        """Profiles matching exactly one of email, phone (E.164) or external id; at most 50."""
        given = {
            "email": email,
            "phoneNumber": phone,
            "externalCustomerId": external_id,
        }
        chosen = {k: v for k, v in given.items() if v is not None}
        if len(chosen) != 1:
            raise ValueError("find() takes exactly one of email=, phone= or external_id=")
        if not next(iter(chosen.values())).strip():
            raise ValueError("find() was given an empty search value")
        # The query string holds personal data: it goes to requests' params, never to a log.
        return self._t.request("GET", _CUSTOMERS, params=chosen, parse=_many(Customer))

    def get(self, customer_id: str) -> Customer:
        """One profile. A merged id raises `CustomerMovedError` carrying the new id."""
        return self._t.request(
            "GET",
            _CUSTOMER,
            path_params={"customer_id": _require_id("customer_id", customer_id)},
            parse=_one(Customer),
        )

    def update(
        self,
        customer_id: str,
        *,
        emails: Sequence[CustomerEmail] | None = None,
        phones: Sequence[CustomerPhone] | None = None,
        clear_external_customer_id: bool = False,
    ) -> None:
        """Change a profile's contact details (PATCH); what is not given stays as it is.

        A list given replaces the profile's whole list (Gladly cannot add or remove one value),
        so pass every entry to keep, each with all its fields. `clear_external_customer_id`
        removes the legacy `externalCustomerId` (sent as null; Gladly documents no other way,
        and profiles of adaptors installed after 2021-05-12 cannot have it set). A merged id
        answers 404 (`NotFoundError`), not 301."""
        body: dict[str, Any] = {}
        if emails is not None:
            body["emails"] = [_entry(e) for e in emails]
        if phones is not None:
            body["phones"] = [_entry(p) for p in phones]
        if clear_external_customer_id:
            body["externalCustomerId"] = None
        if not body:
            raise ValueError("update() was given nothing to change")
        # The body holds personal data: it goes to requests' json, never to a log.
        self._t.request(
            "PATCH",
            _CUSTOMER,
            path_params={"customer_id": _require_id("customer_id", customer_id)},
            json=body,
        )

    def delete(self, customer_id: str) -> None:
        """Delete the profile and all its conversations, irreversibly.

        Raises `ProfileHasOpenConversationsError` while a conversation is OPEN or WAITING and
        `PermissionDeniedError` unless the token's user is a Compliance Administrator.
        """
        self._t.request(
            "DELETE",
            _CUSTOMER,
            path_params={"customer_id": _require_id("customer_id", customer_id)},
        )


class ConversationsResource:
    """Conversations: list for a customer, get, close, add topics."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list_for_customer(self, customer_id: str) -> ConversationList:
        """A customer's conversations, oldest first, at most 100 (`truncated` when more exist)."""
        parse_list = _many(Conversation)

        def parse(result: HTTPResult) -> ConversationList:
            return ConversationList(
                conversations=tuple(parse_list(result)), truncated=_truncated(result.headers)
            )

        return self._t.request(
            "GET",
            _CUSTOMER_CONVERSATIONS,
            path_params={"customer_id": _require_id("customer_id", customer_id)},
            parse=parse,
        )

    def get(self, conversation_id: str) -> Conversation:
        """One conversation."""
        return self._t.request(
            "GET",
            _CONVERSATION,
            path_params={"conversation_id": _require_id("conversation_id", conversation_id)},
            parse=_one(Conversation),
        )

    def close(self, conversation_id: str, *, force: bool = True) -> None:
        """Close a conversation; `force` closes it even while the customer awaits a reply."""
        self._t.request(
            "PATCH",
            _CONVERSATION,
            path_params={"conversation_id": _require_id("conversation_id", conversation_id)},
            json={"status": {"value": "CLOSED", "force": bool(force)}},
        )

    def add_topics(self, conversation_id: str, topic_ids: Sequence[str]) -> None:
        """Add topics to a conversation; Gladly ignores those it already has."""
        if isinstance(topic_ids, str) or not topic_ids:
            raise ValueError("topic_ids must be a non-empty list of Gladly topic ids")
        self._t.request(
            "POST",
            _CONVERSATION_TOPICS,
            path_params={"conversation_id": _require_id("conversation_id", conversation_id)},
            json={"topicIds": [_require_id("topic_ids", t) for t in topic_ids]},
        )


class ItemsResource:
    """Conversation items: list, get, redact, delete, voice transcript."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list_for_conversation(
        self, conversation_id: str, session_id: str | None = None
    ) -> ItemList:
        """A conversation's items, oldest first, at most 1000 (`truncated` when more exist)."""
        params = {"sessionId": session_id} if session_id else None
        parse_list = _many(Item)

        def parse(result: HTTPResult) -> ItemList:
            return ItemList(items=tuple(parse_list(result)), truncated=_truncated(result.headers))

        return self._t.request(
            "GET",
            _CONVERSATION_ITEMS,
            path_params={"conversation_id": _require_id("conversation_id", conversation_id)},
            params=params,
            parse=parse,
        )

    def get(self, item_id: str) -> Item:
        """One item."""
        return self._t.request(
            "GET",
            _ITEM,
            path_params={"item_id": _require_id("item_id", item_id)},
            parse=_one(Item),
        )

    def redact(self, item_id: str) -> None:
        """Remove an item's content (chat, SMS, email, call, voicemail, WhatsApp, Twitter)."""
        self._t.request(
            "POST", _ITEM_REDACT, path_params={"item_id": _require_id("item_id", item_id)}
        )

    def delete(self, item_id: str) -> None:
        """Delete an item; Gladly allows this for CUSTOMER_ACTIVITY items only."""
        self._t.request("DELETE", _ITEM, path_params={"item_id": _require_id("item_id", item_id)})

    def voice_transcript(self, item_id: str) -> VoiceTranscript:
        """The transcript of a call item."""
        return self._t.request(
            "GET",
            _ITEM_TRANSCRIPT,
            path_params={"item_id": _require_id("item_id", item_id)},
            parse=_one(VoiceTranscript),
        )


class OrganisationResource:
    """The organisation's directory: every agent, topic and inbox (ids and names).

    Each is one GET of a full array (Gladly documents no paging for them).
    """

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def agents(self) -> list[Agent]:
        """Every agent: id, name, login email."""
        return self._t.request("GET", _AGENTS, parse=_many(Agent))

    def topics(self) -> list[Topic]:
        """Every topic, disabled ones included: id, name, disabled, parent id."""
        return self._t.request("GET", _TOPICS, parse=_many(Topic))

    def inboxes(self) -> list[Inbox]:
        """Every inbox: id, name, disabled."""
        return self._t.request("GET", _INBOXES, parse=_many(Inbox))


class ReportsResource:
    """Reports API: one CSV per request, paced by Gladly's own report budget (`gate`)."""

    def __init__(self, transport: Transport, gate: ReportGate) -> None:
        self._t = transport
        self.gate = gate

    def generate(self, metric_set: str, start: date, end: date, *, timezone: str = "UTC") -> Report:
        """The `metric_set` report for the days `start`..`end` (both included) in `timezone`.

        Gladly answers CSV whose columns depend on the metric set; the whole body is read
        (reports are bounded: Gladly caps their rows) and split into header and rows.
        """
        if end < start:
            raise ValueError(f"report window ends ({end}) before it starts ({start})")
        body = {
            "metricSet": _require_id("metric_set", metric_set),
            "startAt": start.isoformat(),
            "endAt": end.isoformat(),
            "timezone": timezone,
        }

        def parse(result: HTTPResult) -> Report:
            if not _looks_like_csv(result.body):
                # An HTML error page or JSON answered as a 200: a fault on the way, retried.
                raise MalformedResponseError(
                    "POST",
                    _REPORTS,
                    status=result.status,
                    received=len(result.body),
                    expected_format="CSV",
                )
            header, rows = _csv_table(result.body)
            return Report(metric_set, start, end, header, rows)

        return self._t.request("POST", _REPORTS, json=body, parse=parse, gate=self.gate)


class EventsResource:
    """Events API: what happened in the organisation, for a window within the last 24 hours."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def fetch(
        self, start_at: datetime, end_at: datetime | None, entities: Sequence[str]
    ) -> list[Event]:
        """Events of `entities` (CONVERSATION, CUSTOMER, …) recorded in [start_at, end_at].

        Gladly refuses (400) a start older than 24 hours; events trail real time by up to
        15 seconds, so a caller that wants everything up to `end_at` asks again later.
        """
        if not entities:
            raise ValueError("entities must name at least one entity type")
        params: dict[str, Any] = {"startAt": _iso(start_at), "entities": list(entities)}
        if end_at is not None:
            params["endAt"] = _iso(end_at)

        def parse(result: HTTPResult) -> list[Event]:
            return [
                Event.model_validate_json(line) for line in result.body.splitlines() if line.strip()
            ]

        return self._t.request("GET", _EVENTS, params=params, parse=parse)


def _looks_like_csv(body: bytes) -> bool:
    """False for what is surely not a report: not UTF-8, or HTML or JSON."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return not text.lstrip().startswith(("<", "{", "["))


def _csv_table(body: bytes) -> tuple[tuple[str, ...], list[list[str]]]:
    """Header and rows of a CSV body; blank lines (also before the header) are skipped."""
    text = body.decode("utf-8-sig")
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in row)]
    if not rows:
        return (), []
    return tuple(rows[0]), rows[1:]


class ExportFileStream:
    """An export file that arrived whole, read back as raw JSONL lines (bytes, no newline).

    The download is complete and verified before the first line is yielded; `bytes_read` and
    `sha256` describe exactly what Gladly sent. The spooled copy is removed when iteration ends
    or `close()` is called.
    """

    def __init__(self, download: Download) -> None:
        self.bytes_read = download.bytes_read
        self.sha256 = download.sha256
        self._path = download.path
        self._lines = iter_file_lines(download.path, delete=True)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._lines)

    def close(self) -> None:
        """Stop reading and remove the spooled copy."""
        self._lines.close()  # type: ignore[attr-defined]
        self._path.unlink(missing_ok=True)

    def __enter__(self) -> ExportFileStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ExportsResource:
    """Export API: schedules, jobs and job files."""

    def __init__(self, transport: Transport, spool_dir: str | os.PathLike[str] | None) -> None:
        self._t = transport
        self._spool_dir = spool_dir

    def list_schedules(self) -> list[ExportSchedule]:
        """The organisation's export schedules."""
        return self._t.request("GET", _EXPORT_SCHEDULES, parse=_many(ExportSchedule))

    def list_jobs(
        self,
        status: str | None = None,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
    ) -> list[ExportJob]:
        """Export jobs of the last 14 days, filtered by status and by `updatedAt` window."""
        params: dict[str, Any] = {}
        if status is not None:
            params["status"] = status.upper()
        if start_at is not None:
            params["startAt"] = _iso(start_at)
        if end_at is not None:
            params["endAt"] = _iso(end_at)
        return self._t.request("GET", _EXPORT_JOBS, params=params or None, parse=_many(ExportJob))

    def get_job(self, job_id: str) -> ExportJob:
        """One export job."""
        return self._t.request(
            "GET",
            _EXPORT_JOB,
            path_params={"job_id": _require_id("job_id", job_id)},
            parse=_one(ExportJob),
        )

    def delete_job(self, job_id: str) -> None:
        """Delete a finished job and its files (400 while it is PENDING or IN_PROGRESS)."""
        self._t.request(
            "DELETE", _EXPORT_JOB, path_params={"job_id": _require_id("job_id", job_id)}
        )

    def download_file(
        self,
        job_id: str,
        filename: str,
        destination: str | os.PathLike[str],
        *,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> Download:
        """Stream one job file to `destination` (renamed into place only once it is whole).

        `on_progress(received_bytes, expected_bytes_or_None)` is called as chunks arrive.
        """
        return self._t.download(
            _EXPORT_FILE,
            {
                "job_id": _require_id("job_id", job_id),
                "filename": _require_id("filename", filename),
            },
            destination=Path(destination),
            on_progress=on_progress,
        )

    def stream_file(self, job_id: str, filename: str) -> ExportFileStream:
        """Iterate a job file's JSONL lines without holding the file in memory.

        The body is spooled to disk while it is hashed and counted; a download cut short is
        retried from the start and never yielded as if it were complete.
        """
        download = self._t.download(
            _EXPORT_FILE,
            {
                "job_id": _require_id("job_id", job_id),
                "filename": _require_id("filename", filename),
            },
            spool_dir=self._spool_dir,
        )
        return ExportFileStream(download)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
