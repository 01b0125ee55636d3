"""The data dictionary's entries for the export's records: customers, agents, topics, inboxes."""

from __future__ import annotations

from gladly_archive.dictionary.terms import NONE, PERSONAL, PSEUDONYMOUS, Column, DatasetEntry

__all__ = ["ENTRIES"]

_CUSTOMERS_FILE = "export file customers.jsonl"
_JOB = Column(
    "The export job whose file held the row, or the run (`export-…`, `enrich-…`, `api-…`) "
    "whose API listing it came from.",
    "pipeline: the job's or run's id",
    NONE,
)
_ARCHIVED = Column(
    "When the row was archived (UTC); the newest per id is the current one.",
    "pipeline: the run's clock",
    NONE,
)
_LISTING_LAYOUT = (
    "`{name}/job=<id>/`: `<id>` is the export job whose `{name}.jsonl` it is, or the run "
    "(`export-…`, `enrich-…`, `api-…`) that listed {name} with GET /api/v1/{name}."
)
_LISTING_READING = (
    "Every listing is kept: keep the newest archived_at per {id}. An API listing is written "
    "only when some entry changed, and its rows are stamped after every row already stored."
)

CUSTOMERS = DatasetEntry(
    directory="customers/",
    summary=(
        "One row per customer record of an export job's `customers.jsonl`: the export's "
        "flattened profile (name, address, emails, phones, external ids). A per-customer run "
        "(`job_id` `api-…`) writes the profiles it read with GET "
        "/api/v1/customer-profiles/{id}, flattened the same way."
    ),
    layout="`customers/job=<job id>/`, then `customers/job=folded/<bucket>/` once folded.",
    reading=(
        "A customer has a row per job that lists them: keep the newest archived_at (then the "
        "greatest job_id) per customer_id."
    ),
    columns={
        "customer_id": Column(
            "Gladly's id of the customer.", f"{_CUSTOMERS_FILE}: id", PSEUDONYMOUS
        ),
        "name": Column(
            "The customer's name; NULL when Gladly has none.",
            f"{_CUSTOMERS_FILE}: name",
            PERSONAL,
        ),
        "address": Column(
            "The customer's postal address as one text; NULL when Gladly sends none.",
            f"{_CUSTOMERS_FILE}: address",
            PERSONAL,
        ),
        "emails": Column(
            "The customer's email addresses; an empty list when there are none, NULL when the "
            "record lacks the field.",
            f"{_CUSTOMERS_FILE}: emailAddresses",
            PERSONAL,
        ),
        "phones": Column(
            "The customer's phone numbers (a per-customer run keeps Gladly's normalised form "
            "where it has one); an empty list when there are none, NULL when the record lacks "
            "the field.",
            f"{_CUSTOMERS_FILE}: phoneNumbers",
            PERSONAL,
        ),
        "external_customer_id": Column(
            "The external id a lookup adaptor set before 2021-05-12; NULL when none.",
            f"{_CUSTOMERS_FILE}: externalCustomerId",
            PERSONAL,
        ),
        "external_customer_ids_json": Column(
            "The external ids lookup adaptors set since, as a JSON object {appId: externalId}; "
            "NULL when none.",
            f"{_CUSTOMERS_FILE}: externalCustomerIds",
            PERSONAL,
        ),
        "raw_json": Column(
            "The record exactly as read, so fields without a column are kept.",
            f"{_CUSTOMERS_FILE}: the whole line",
            PERSONAL,
        ),
        "job_id": Column(
            "The export job whose file held the record, or the per-customer run (`api-…`).",
            "pipeline: the job's or run's id",
            NONE,
        ),
        "archived_at": _ARCHIVED,
    },
)

AGENTS = DatasetEntry(
    directory="agents/",
    summary=(
        "One row per agent per listing: the export job's `agents.jsonl`, or GET /api/v1/agents "
        "(every export, `enrich` and per-customer run takes one). Used to name agents."
    ),
    layout=_LISTING_LAYOUT.format(name="agents"),
    reading=_LISTING_READING.format(id="agent_id"),
    columns={
        "agent_id": Column(
            "Gladly's id of the agent.",
            "export file agents.jsonl: id; Gladly API GET /api/v1/agents: id",
            PSEUDONYMOUS,
        ),
        "name": Column(
            "The agent's name; NULL when Gladly sends none.",
            "export file agents.jsonl: name; Gladly API GET /api/v1/agents: name",
            PERSONAL,
        ),
        "email_address": Column(
            "The agent's email address; NULL when Gladly sends none.",
            "export file agents.jsonl: emailAddress; Gladly API GET /api/v1/agents: emailAddress",
            PERSONAL,
        ),
        "raw_json": Column(
            "The entry exactly as Gladly sent it.",
            "export file agents.jsonl: the whole line; Gladly API GET /api/v1/agents: the entry",
            PERSONAL,
        ),
        "job_id": _JOB,
        "archived_at": _ARCHIVED,
    },
)

TOPICS = DatasetEntry(
    directory="topics/",
    summary=(
        "One row per topic per listing: the export job's `topics.jsonl`, or GET /api/v1/topics "
        "(every export, `enrich` and per-customer run takes one). Policies and holds name "
        "topics by it."
    ),
    layout=_LISTING_LAYOUT.format(name="topics"),
    reading=_LISTING_READING.format(id="topic_id"),
    columns={
        "topic_id": Column(
            "Gladly's id of the topic.",
            "export file topics.jsonl: id; Gladly API GET /api/v1/topics: id",
            NONE,
        ),
        "name": Column(
            "The topic's name; NULL when Gladly sends none.",
            "export file topics.jsonl: name; Gladly API GET /api/v1/topics: name",
            NONE,
        ),
        "disabled": Column(
            "True when the topic is disabled; NULL when Gladly does not say.",
            "export file topics.jsonl: disabled; Gladly API GET /api/v1/topics: disabled",
            NONE,
        ),
        "parent_id": Column(
            "The parent topic's id; NULL for a top-level topic.",
            "export file topics.jsonl: parentId; Gladly API GET /api/v1/topics: parentId",
            NONE,
        ),
        "raw_json": Column(
            "The entry exactly as Gladly sent it.",
            "export file topics.jsonl: the whole line; Gladly API GET /api/v1/topics: the entry",
            NONE,
        ),
        "job_id": _JOB,
        "archived_at": _ARCHIVED,
    },
)

INBOXES = DatasetEntry(
    directory="inboxes/",
    summary=(
        "One row per inbox per listing of GET /api/v1/inboxes (no export file lists inboxes), "
        "taken by every export, `enrich` and per-customer run. Policies and holds name "
        "inboxes by it."
    ),
    layout=(
        "`inboxes/job=<run id>/`: the run (`export-…`, `enrich-…`, `api-…`) that listed the "
        "inboxes."
    ),
    reading=_LISTING_READING.format(id="inbox_id"),
    columns={
        "inbox_id": Column("Gladly's id of the inbox.", "Gladly API GET /api/v1/inboxes: id", NONE),
        "name": Column(
            "The inbox's name; NULL when Gladly sends none.",
            "Gladly API GET /api/v1/inboxes: name",
            NONE,
        ),
        "disabled": Column(
            "True when the inbox is disabled; NULL when Gladly does not say.",
            "Gladly API GET /api/v1/inboxes: disabled",
            NONE,
        ),
        "raw_json": Column(
            "The entry exactly as Gladly sent it.",
            "Gladly API GET /api/v1/inboxes: the entry",
            NONE,
        ),
        "job_id": Column("The run that listed the inboxes.", "pipeline: the run's id", NONE),
        "archived_at": _ARCHIVED,
    },
)

ENTRIES = {"customers": CUSTOMERS, "agents": AGENTS, "topics": TOPICS, "inboxes": INBOXES}
