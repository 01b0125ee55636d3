"""The fact tables derived from the files' contributions (retention_policies.fact_sources).

Each conversation's row is a function of the contributions that name it, the merges of its
items' customers and its customer's profile; each customer's row a function of the
contributions of the customer ids merged into it, of the conversations whose customer it is
and of its profile. Nothing else: no order of rows, no global count. So the rows of a subset of
keys, derived from the contributions of every file but only for those keys, are exactly the
rows a derivation of everything gives for them; the saved facts are refreshed that way
(retention_policies.facts_refresh). Where several rows tie, the choice is made by value (the
conversation's customer is the one of its latest item, then the greatest id), never by the
order rows happen to be read in.

Inputs are relations named by `Inputs` (tables or views with the columns of
fact_sources.CONTRIBUTIONS) and `merges` (source_id → into_id). `keys` names a one-column
table of the keys to derive (`conversation_id` or `customer_id`), or is None for all.
"""

# SQL here is built only from our own constant identifiers; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from retention_policies.fact_sources import quote

__all__ = [
    "Inputs",
    "channel_decoding",
    "conversation_core",
    "customers",
    "finish_conversations",
    "profiles",
    "resolve_merges",
]


@dataclass(frozen=True)
class Inputs:
    """The relations holding every live file's contributions, and how `ch` is decoded."""

    cc: str
    st: str
    tp: str
    cu: str
    en: str
    pr: str
    merges: str
    # SQL aggregating `ch` over rows, and SQL turning one aggregated `ch` into sorted names
    # (both with "{c}" for the column): see channel_decoding.
    agg: str
    decode: str


def channel_decoding(types: dict[str, int] | None) -> tuple[str, str]:
    """(aggregate, decode) SQL templates for `ch`: a bit mask over `types` (name → bit), or a
    sorted list of names when `types` is None. Decoding gives the names sorted, whatever bits
    they have."""
    if types is None:
        return "list_distinct(flatten(list({c})))", "list_sort({c})"
    names = sorted(types)
    literal = "CAST([" + ", ".join(quote(t) for t in names) + "] AS VARCHAR[])"
    bits = "[" + ", ".join(str(types[t]) for t in names) + "]"
    if not names:
        return "bit_or({c})", "CAST([] AS VARCHAR[])"
    decode = f"list_filter({literal}, lambda t, i: (({{c}} >> {bits}[i]) & 1) = 1)"
    return "bit_or({c})", decode


def _where(column: str, keys: str | None, joiner: str = "WHERE") -> str:
    if keys is None:
        return ""
    return f"{joiner} {column} IN (SELECT * FROM {keys})"


def resolve_merges(con: duckdb.DuckDBPyConnection, mg: str, out: str) -> None:
    """Table `out` (source_id → into_id): customers merged away and the customer that survives
    them, chains followed (A → B then B → C: A's data is C's; a cycle, never sent by Gladly,
    stops after 8 steps)."""
    con.execute(f"CREATE OR REPLACE TABLE {out} (source_id VARCHAR, into_id VARCHAR)")
    con.execute(
        f"""INSERT INTO {out} SELECT customer_id, merged_into FROM {mg}
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY fetched_at DESC) = 1"""
    )
    for _ in range(8):
        changed = con.execute(
            f"""UPDATE {out} SET into_id = n.into_id FROM {out} n
            WHERE {out}.into_id = n.source_id AND n.into_id <> {out}.source_id"""
        ).fetchall()
        if not changed or not changed[0][0]:
            break


_CORE_SQL = """
CREATE OR REPLACE TEMP TABLE {out} AS
WITH c AS (
    SELECT cc.conversation_id, coalesce(m.into_id, cc.customer_id) AS customer_id,
        cc.mn, cc.mx, cc.n, cc.ch
    FROM {cc} cc LEFT JOIN {merges} m ON m.source_id = cc.customer_id
    WHERE cc.conversation_id IS NOT NULL {cc_keys}
),
agg AS (
    SELECT conversation_id,
        -- the customer of the conversation's latest item (a merge can move items)
        (max({{'t': coalesce(mx, '-infinity'::TIMESTAMPTZ), 'c': customer_id}})
            FILTER (WHERE customer_id IS NOT NULL)).c AS customer_id,
        min(mn) AS created_at, max(mx) AS last_activity,
        {agg} AS ch, CAST(sum(n) AS BIGINT) AS item_count
    FROM c GROUP BY conversation_id
),
-- A mask is decoded once per distinct value (a few hundred), then joined: decoding per row
-- with a lambda costs seconds at millions of conversations.
masks AS (SELECT ch, {decode} AS channels FROM (SELECT DISTINCT ch FROM agg)),
last_status AS (
    SELECT conversation_id, status, ts AS status_at FROM {st} {st_keys}
    QUALIFY row_number() OVER (PARTITION BY conversation_id ORDER BY ts DESC, item_id DESC) = 1
),
topics_now AS (
    SELECT conversation_id, list_sort(list(topic_id)) AS topic_ids FROM (
        SELECT * FROM {tp} {tp_keys} QUALIFY row_number() OVER (
            PARTITION BY conversation_id, topic_id ORDER BY ts DESC, item_id DESC) = 1
    ) WHERE added GROUP BY conversation_id
),
enr AS (
    SELECT * FROM {en} {en_keys}
    QUALIFY row_number() OVER (PARTITION BY conversation_id ORDER BY enriched_at DESC) = 1
),
joined AS (
    SELECT coalesce(a.conversation_id, e.conversation_id) AS conversation_id,
        coalesce(a.customer_id, e.customer_id) AS customer_id,
        coalesce(a.created_at, e.created_at) AS created_at,
        coalesce(a.last_activity, e.created_at) AS last_activity,
        coalesce(e.status, CASE WHEN s.status = 'CLOSED' THEN 'CLOSED' ELSE 'OPEN' END) AS status,
        coalesce(e.closed_at, CASE WHEN s.status = 'CLOSED' THEN s.status_at END) AS closed_at0,
        e.inbox_id,
        coalesce(e.topic_ids, t.topic_ids, []) AS topic_ids,  -- both sorted already
        CAST(coalesce(m.channels, []) AS VARCHAR[]) AS channels,
        coalesce(a.item_count, 0) AS item_count,
        e.enriched_at
    FROM agg a
    LEFT JOIN masks m ON m.ch = a.ch
    FULL OUTER JOIN enr e ON e.conversation_id = a.conversation_id
    LEFT JOIN last_status s ON s.conversation_id = coalesce(a.conversation_id, e.conversation_id)
    LEFT JOIN topics_now t ON t.conversation_id = coalesce(a.conversation_id, e.conversation_id)
)
SELECT j.conversation_id, j.customer_id, j.created_at, j.last_activity,
    CASE WHEN j.status = 'CLOSED' THEN j.closed_at0 END AS closed_at, j.status, j.inbox_id,
    CAST(j.topic_ids AS VARCHAR[]) AS topic_ids, j.channels, CAST(j.item_count AS BIGINT)
        AS item_count,
    j.enriched_at
FROM joined j
"""


def conversation_core(
    con: duckdb.DuckDBPyConnection, inputs: Inputs, keys: str | None, out: str
) -> None:
    """Temp table `out`: the conversations' facts but their customer's attributes."""
    con.execute(
        _CORE_SQL.format(
            out=out,
            cc=inputs.cc,
            merges=inputs.merges,
            st=inputs.st,
            tp=inputs.tp,
            en=inputs.en,
            cc_keys=_where("cc.conversation_id", keys, "AND"),
            st_keys=_where("conversation_id", keys),
            tp_keys=_where("conversation_id", keys),
            en_keys=_where("conversation_id", keys),
            agg=inputs.agg.format(c="ch"),
            decode=inputs.decode.format(c="ch"),
        )
    )


def profiles(con: duckdb.DuckDBPyConnection, inputs: Inputs, keys: str | None, out: str) -> None:
    """Temp table `out` (customer_id, attrs, fetched_at): each customer's newest profile row;
    `fetched_at` only where it carried attributes."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {out} AS SELECT customer_id, attrs,
            CASE WHEN attrs IS NOT NULL THEN fetched_at END AS fetched_at
        FROM {inputs.pr} {_where("customer_id", keys)}
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY fetched_at DESC) = 1"""
    )


def finish_conversations(
    con: duckdb.DuckDBPyConnection, core: str, profile: str, out: str, *, temp: bool
) -> None:
    """Table `out` (CONVERSATION_FACTS' columns): `core` with its customer's attributes."""
    kind = "TEMP TABLE" if temp else "TABLE"
    con.execute(
        f"""CREATE OR REPLACE {kind} {out} AS SELECT c.conversation_id, c.customer_id,
            c.created_at, c.last_activity, c.closed_at, c.status, c.inbox_id, c.topic_ids,
            c.channels, c.item_count, p.attrs AS custom_attributes, c.enriched_at
        FROM {core} c LEFT JOIN {profile} p ON p.customer_id = c.customer_id"""
    )


_CUSTOMERS_SQL = """
CREATE OR REPLACE {kind} {out} AS
WITH c AS (
    SELECT coalesce(m.into_id, cc.customer_id) AS customer_id, cc.mn, cc.mx, cc.n, cc.ch
    FROM {cc} cc LEFT JOIN {merges} m ON m.source_id = cc.customer_id {cc_keys}
),
it AS (
    SELECT customer_id, max(mx) AS last_activity, min(mn) AS first_activity,
        CAST(sum(n) AS BIGINT) AS item_count, {agg} AS ch
    FROM c GROUP BY customer_id
),
masks AS (SELECT ch, {decode} AS channels FROM (SELECT DISTINCT ch FROM it)),
cv AS (
    SELECT customer_id, count(*) AS conversation_count,
        bool_or(status IN ('OPEN', 'WAITING')) AS has_open_conversation
    FROM {conversations} {cv_keys} GROUP BY customer_id
),
-- Newest record per customer; a merged-away customer's emails and phones are the survivor's
-- now (Gladly merges them into the surviving profile), sorted when several records meet.
newest AS (
    SELECT coalesce(m.into_id, u.customer_id) AS into_id, u.customer_id, u.emails, u.phones
    FROM {cu} u LEFT JOIN {merges} m ON m.source_id = u.customer_id {cu_keys}
    QUALIFY row_number() OVER (
        PARTITION BY u.customer_id ORDER BY u.archived_at DESC, u.job_id DESC) = 1
),
cust AS (
    SELECT into_id AS customer_id,
        CASE WHEN count(*) > 1 THEN list_sort(list_distinct(flatten(list(emails))))
            ELSE list_distinct(flatten(list(emails))) END AS emails,
        CASE WHEN count(*) > 1 THEN list_sort(list_distinct(flatten(list(phones))))
            ELSE list_distinct(flatten(list(phones))) END AS phones
    FROM newest GROUP BY 1
),
ids AS (
    SELECT customer_id FROM it UNION SELECT customer_id FROM cust
    UNION SELECT customer_id FROM cv
)
SELECT ids.customer_id, it.last_activity, it.first_activity,
    CAST(coalesce(cv.conversation_count, 0) AS BIGINT) AS conversation_count,
    CAST(coalesce(it.item_count, 0) AS BIGINT) AS item_count,
    coalesce(cv.has_open_conversation, false) AS has_open_conversation,
    CAST(coalesce(list_transform(c.emails, lambda x: lower(trim(x))), []) AS VARCHAR[]) AS emails,
    CAST(coalesce(c.phones, []) AS VARCHAR[]) AS phones,
    p.attrs AS custom_attributes,
    p.fetched_at AS profile_fetched_at,
    CAST(coalesce(m.channels, []) AS VARCHAR[]) AS channels,
    CAST(NULL AS VARCHAR[]) AS inbox_ids,  -- roll-ups: Tables.ensure_rollups
    CAST(NULL AS VARCHAR[]) AS topic_ids,
    CAST(NULL AS VARCHAR[]) AS conversation_statuses
FROM ids
LEFT JOIN it ON it.customer_id = ids.customer_id
LEFT JOIN masks m ON m.ch = it.ch
LEFT JOIN cv ON cv.customer_id = ids.customer_id
LEFT JOIN cust c ON c.customer_id = ids.customer_id
LEFT JOIN {profile} p ON p.customer_id = ids.customer_id
"""


def customers(
    con: duckdb.DuckDBPyConnection,
    inputs: Inputs,
    keys: str | None,
    conversations: str,
    profile: str,
    out: str,
    *,
    temp: bool,
) -> None:
    """Table `out` (CUSTOMER_FACTS' columns, roll-ups left NULL) for the customers in `keys`
    (all if None), from the contributions, `conversations` (holding at least every
    conversation of those customers) and `profile` (from `profiles`, holding theirs)."""
    con.execute(
        _CUSTOMERS_SQL.format(
            kind="TEMP TABLE" if temp else "TABLE",
            out=out,
            cc=inputs.cc,
            cu=inputs.cu,
            merges=inputs.merges,
            conversations=conversations,
            profile=profile,
            cc_keys=_where("coalesce(m.into_id, cc.customer_id)", keys),
            cu_keys=_where("coalesce(m.into_id, u.customer_id)", keys),
            cv_keys=_where("customer_id", keys),
            agg=inputs.agg.format(c="ch"),
            decode=inputs.decode.format(c="ch"),
        )
    )
