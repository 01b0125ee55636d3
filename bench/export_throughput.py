"""How fast and how lean the export converter is, against baselines measured in the same run.

    .venv/bin/python bench/export_throughput.py [--items 1000000] [--also 4000000] [--keep]
                                                [--repeat 2] [--block-mb 8] [--compression zstd]

Builds a conversation_items.jsonl of --items lines (every content type, ~480 bytes a line,
templated so that a 4 M-line file takes seconds), then converts it to Parquet three ways, each
in its own process so that peak RSS is measured per contender (os.wait4):

- ours: gladly_archive.convert.convert_items_file → item_derive.derive_items → pyarrow
  ParquetWriter, one row group per batch (the ITEMS schema: typed columns, the derived
  channel, names and plain text, plus raw_json, the whole line);
- raw pyarrow: pyarrow.json.open_json (streaming, schema inferred) → ParquetWriter — the
  parser's limit, doing no work of ours;
- per-record loop: json.loads each line, flatten it to an ITEMS row in Python
  (convert_fallback.item_row, the reference definition of every column), write 10,000-row
  batches (pa.RecordBatch.from_pylist) — what a record-at-a-time Singer-style tap does.

All three write with the archive's ParquetWriter options (writer.parquet_options, with
--compression, default zstd like the archive's writer): free text without dictionaries or
min/max statistics (ours' and the loop's ``text``, ``recording_summary`` and ``raw_json``; raw
pyarrow's ``content.content``, ``content.body`` and ``content.recordingSummary.summary``, the
same text), every other column with both. Ours and raw pyarrow read blocks of the same size
(--block-mb, default 8 MB, the converter's default). Raw pyarrow is no faster with bigger
blocks (measured 4.6-5.3 s a million items from 8 to 64 MB, noise included; 7.8 s at its own
1 MB default), only bigger: 550 MB peak RSS at 8 MB, 820 MB at 32 MB.

Keeping the baseline honest: raw pyarrow with an inferred schema cannot read Gladly's real
export at all. A block fails as soon as an EMAIL (`content.to` a list) meets an SMS or
PHONE_CALL (`content.to` a string) — it fails on the first block — and custom-channel
messages (`content.content` an object) and `recordingDuration: "100"` break it too. So the
goals are judged on a second file, built from the same templates, that it can read: SMS and
PHONE_CALL `to` written as one-element lists, custom-channel messages replaced by chat
messages, durations as integers. Every other type and field is there, the size is the same,
and all three contenders convert exactly that file. Ours is also run on the real-shaped file
(its MB/s shows what the renaming of conflicting keys costs); the baseline's failure on it is
printed.

Goals (PASS/FAIL): ours ≤ 1.25 x raw pyarrow; loop ≥ 5 x ours; our peak RSS ≤ 300 MB and flat
(the 4 M file within 10 % of the 1 M file's peak). The machine has two cores and may run
other work: use --repeat to take the best of several interleaved runs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typing import Any

from _peak import run_measured

GOAL_RAW_RATIO = 1.25
GOAL_LOOP_RATIO = 5.0
GOAL_RSS_MB = 300.0
GOAL_RSS_GROWTH = 1.10

# --------------------------------------------------------------------------------------------
# The input file
# --------------------------------------------------------------------------------------------

_CHAT = (
    "Hi, my order ORD-{n} arrived with a cracked lid. The box looked fine from the outside.",
    "Sorry to hear that! Could you send a photo of the damage so I can start a replacement?",
    "Here you go",
    "The package is at the Memphis hub and should arrive in two days. "
    "Your tracking number is 1Z999AA10123456784.",
    "I'd like to return the jacket from ORD-{n}, it's too small. Do I need the original box, "
    "or can I print a label at home?",
    "Thanks, that's all! Have a great weekend.",
    "Got the tracking number, thanks! \U0001f64f",
    "¿Pueden enviarme una etiqueta de devolución para el pedido ORD-{n}? Gracias.",
    "No problem! I've emailed you a prepaid return label. Once the return arrives we refund "
    'within five business days. Just reply "label" if it didn\'t arrive.',
    "My card statement shows two charges for the same order, $84.20 each time. "
    "Can you refund one of them please?",
)
_EMAIL_BODIES = (
    "Hello,\nThe blender jar from order ORD-{n} is cracked. Photos attached, along with the "
    "receipt. I would prefer a replacement rather than a refund if you have it in stock.\n"
    "Thanks,\nDana",
    "Hi Dana,\nThanks for the photos. I've started a replacement for ORD-{n}; you'll get a "
    "tracking number by email within one business day. There is no need to send the damaged "
    "jar back - please recycle it.\n\nBest,\nShop Support",
    "Re: ORD-{n}\nThe carrier reports the parcel was delivered to a neighbour at 14:02. Please "
    "check with them first and let us know if it doesn't turn up; we'll open a claim.\nOps",
    "Hola,\nEl pedido ORD-{n} llegó incompleto: falta la tapa. ¿Me pueden enviar una?\nGracias",
)
_SUBJECTS = ("Damaged item in order ORD-{n}", "Re: Where is my order ORD-{n}?", "Return request")
_NOTES = (
    "Replacement approved by supervisor. Do not refund.",
    "Customer called twice about ORD-{n}; escalated to the carrier claims queue.",
    "<p>VIP customer &mdash; <b>waive</b> the restocking fee.</p>",
)
_SUMMARIES = (
    "Customer called about a cracked blender jar; agent confirmed a replacement would ship today "
    "and sent the tracking number by SMS.",
    "Caller asked about a double charge on order ORD-{n}; agent refunded one charge.",
)
_VOICE_AI = (
    "Thanks for calling Shop. How can I help you today?",
    "I can help with that. What is your order number?",
    "Let me connect you to an agent.",
)
_ATTACHMENTS = (
    ("image/jpeg", "photo.jpg"),
    ("image/png", "screenshot.png"),
    ("application/pdf", "receipt.pdf"),
)
_FRACTIONS = (0, 1, 2, 3, 3, 3, 3, 6, 8, 9)
# (weight, kind): roughly the mix of a chat-heavy retail support org.
_MIX = (
    (300, "chat"),
    (20, "qr_request"),
    (20, "qr_response"),
    (120, "email"),
    (100, "sms"),
    (60, "call"),
    (20, "voicemail"),
    (50, "whatsapp"),
    (10, "twitter"),
    (30, "facebook"),
    (30, "instagram"),
    (60, "note"),
    (30, "activity"),
    (50, "topic"),
    (60, "status"),
    (20, "voice_ai"),
    (15, "custom"),
    (1, "unknown"),
)


class ItemsFile:
    """Realistic item lines; `inferable` writes the variant an inferred Arrow schema can read."""

    def __init__(self, seed: int, *, inferable: bool) -> None:
        self.rng = random.Random(seed)
        self.inferable = inferable
        self.ids = [self._id() for _ in range(4000)]
        self.kinds = [kind for weight, kind in _MIX for _ in range(weight)]
        self.start = datetime(2025, 1, 8, tzinfo=UTC)

    def _id(self) -> str:
        return base64.urlsafe_b64encode(self.rng.randbytes(16)).decode()[:22]

    def _ts(self, micros: int) -> str:
        moment = self.start + timedelta(microseconds=micros)
        head = moment.strftime("%Y-%m-%dT%H:%M:%S")
        digits = self.rng.choice(_FRACTIONS)
        if digits == 0:
            return head + "Z"
        fraction = f"{moment.microsecond:06d}"
        fraction = fraction[:digits] if digits <= 6 else fraction + "1" * (digits - 6)
        return f"{head}.{fraction}Z"

    def _text(self, pool: tuple[str, ...], n: int) -> str:
        text = self.rng.choice(pool)
        while pool is _CHAT and self.rng.random() < 0.5:  # people often send a few at once
            text += " " + self.rng.choice(pool)
        return text.replace("{n}", str(n))

    def _attachments(self, content: dict[str, Any], row: int) -> None:
        roll = self.rng.random()
        if roll < 0.1:
            content["attachments"] = [
                {
                    "id": self.ids[3100 + (row + k) % 800],
                    "contentType": mime,
                    "filename": name,
                    "fileSize": 2048 + self.rng.randrange(900_000),
                }
                for k, (mime, name) in enumerate(
                    self.rng.sample(_ATTACHMENTS, 1 + self.rng.randrange(2))
                )
            ]
        elif roll < 0.3:
            content["attachments"] = []

    def item(self, row: int) -> dict[str, Any]:
        """One item envelope with the content of a randomly chosen type."""
        rng, ids = self.rng, self.ids
        kind = rng.choice(self.kinds)
        if self.inferable and kind == "custom":
            kind = "chat"
        n = 10000 + row % 90000
        customer, agent = ids[row % 1500], ids[3000 + row % 40]
        inbound = rng.random() < 0.55
        micros = row * 86_400 + rng.randrange(1_000_000)
        item: dict[str, Any] = {
            "id": self._id(),
            "conversationId": ids[1500 + row % 1500],
            "customerId": customer,
            "timestamp": self._ts(micros),
            "initiator": {
                "id": customer if inbound else agent,
                "type": "CUSTOMER" if inbound else "AGENT",
            },
        }
        session = ids[3900 + row % 100]
        content: dict[str, Any]
        if kind in ("chat", "qr_request", "qr_response"):
            content = {"type": "CHAT_MESSAGE", "messageType": "TEXT", "sessionId": session}
            options = [{"id": "refund", "label": "Refund"}, {"id": "replace", "label": "Replace"}]
            if kind == "chat":
                content["content"] = self._text(_CHAT, n)
                self._attachments(content, row)
            elif kind == "qr_request":
                item["initiator"] = {"id": "SIDEKICK_V2", "type": "SYSTEM"}
                content["messageType"] = "QUICK_REPLY_REQUEST"
                content["content"] = "How would you like us to fix this?"
                content["messageData"] = {"options": options}
            else:
                content["messageType"] = "QUICK_REPLY_RESPONSE"
                content["content"] = "Replace"
                content["messageData"] = {
                    "quickReplyRequest": {"options": options},
                    "selectedOptionId": "replace",
                    "requestMessageId": ids[row % 4000],
                }
        elif kind == "email":
            person, shop = f"customer{n}@example.com", "support@shop.example.com"
            content = {"type": "EMAIL", "from": person if inbound else shop}
            content["to"] = [shop if inbound else person]
            roll = rng.random()
            if roll < 0.4:
                content["cc"] = []
            elif roll < 0.5:
                content["cc"] = ["orders@shop.example.com"]
            elif roll < 0.55:
                content["bcc"] = ["qa@shop.example.com"]
            content["subject"] = self._text(_SUBJECTS, n)
            content["content"] = self._text(_EMAIL_BODIES, n)
            self._attachments(content, row)
        elif kind in ("sms", "whatsapp", "facebook", "instagram", "twitter"):
            names = {"sms": "SMS", "whatsapp": "WHATSAPP", "facebook": "FACEBOOK_MESSAGE"}
            names |= {"instagram": "INSTAGRAM_DIRECT", "twitter": "TWITTER"}
            content = {"type": names[kind]}
            if kind == "sms":
                ends = [f"+1415555{n % 10000:04d}", "+18005550199"]
                content["from"], to = ends if inbound else ends[::-1]
                content["to"] = [to] if self.inferable else to
            if kind == "facebook":
                content["pageId"] = "102938475610293"
                content["userId"] = str(5551234567890123 + n)
            content["content"] = self._text(_CHAT, n)
            if kind != "twitter":
                self._attachments(content, row)
        elif kind in ("call", "voicemail"):
            started = micros - 400_000_000
            content = {"type": "PHONE_CALL" if kind == "call" else "VOICEMAIL"}
            if kind == "call":
                content["from"] = f"+1415555{n % 10000:04d}"
                content["to"] = ["+18005550199"] if self.inferable else "+18005550199"
                item["responder"] = {"id": agent, "type": "AGENT"}
            content["startedAt"] = self._ts(started)
            if kind == "call":
                content["answeredAt"] = self._ts(started + 18_000_000)
                content["completedAt"] = self._ts(micros)
            if rng.random() < 0.1:  # redacted
                content["recordingStatus"] = "DELETED"
                content["recordingSummary"] = {"status": "REDACTED"}
            else:
                content["recordingStatus"] = "AVAILABLE"
                content["recordingUrl"] = f"/api/v1/conversation-items/{item['id']}/media/recording"
                duration = rng.randrange(5, 1800)
                # Gladly's docs show the string "100" once; keep a few to exercise that.
                as_text = rng.random() < 0.05 and not self.inferable
                content["recordingDuration"] = str(duration) if as_text else duration
                content["recordingSummary"] = {
                    "status": "READY",
                    "summary": self._text(_SUMMARIES, n),
                    "language": "en",
                }
        elif kind == "note":
            content = {"type": "CONVERSATION_NOTE", "body": self._text(_NOTES, n)}
            item["initiator"] = {"id": agent, "type": "AGENT"}
        elif kind == "activity":
            del item["conversationId"]
            item["initiator"] = {"id": ids[3050], "type": "API"}
            content = {
                "type": "CUSTOMER_ACTIVITY",
                "title": "NPS survey answered",
                "body": f"Score: {n % 10} - 'Fast shipping, ORD-{n}'",
                "activityType": "SURVEY",
                "sourceName": "SurveyTool",
                "link": {"url": f"https://surveys.example.com/r/{n}", "text": "View response"},
                "expandByDefault": False,
                "occurredAt": self._ts(micros),
            }
        elif kind == "topic":
            key = "addedTopicIds" if rng.random() < 0.8 else "removedTopicIds"
            content = {"type": "TOPIC_CHANGE", key: [ids[3200 + n % 30], ids[3200 + n % 7]]}
        elif kind == "status":
            content = {
                "type": "CONVERSATION_STATUS_CHANGE",
                "status": rng.choice(("OPEN", "CLOSED")),
            }
        elif kind == "voice_ai":
            item["initiator"] = {"id": "SIDEKICK_V2", "type": "SYSTEM"}
            item["sessionId"] = session
            content = {
                "type": "VOICE_AI_MESSAGE",
                "customerNumber": f"+1415555{n % 10000:04d}",
                "companyNumber": "+18005550199",
                "body": self._text(_VOICE_AI, n),
                "status": "PLAYED",
            }
        elif kind == "custom":
            content = {
                "customChannelId": ids[3060],
                "companyAddress": "shop-app",
                "customerAddress": f"app-user-{n}",
                "sessionId": session,
                "type": "TEXT",
                "content": {"text": self._text(_CHAT, n)},
                "status": {"value": "DELIVERED"},
            }
        else:  # a type this code has never heard of
            content = {"type": "CO_BROWSE_SESSION", "body": "Co-browse session ended", "pages": 3}
        item["content"] = content
        return item

    def write(self, path: Path, count: int, templates: int = 20_000) -> int:
        """Write `count` lines; returns the file's size in bytes.

        `templates` items are rendered by json.dumps, then reused with a fresh id each (ids
        and the line mix vary, the text pools repeat as they do in real support traffic).
        """
        parts = []
        for row in range(min(count, templates)):
            item = self.item(row)
            text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            head, tail = text.split(str(item["id"]), 1)
            parts.append((head, tail))
        with path.open("w", encoding="utf-8", newline="\n") as out:
            chunk: list[str] = []
            for row in range(count):
                head, tail = parts[row % len(parts)]
                chunk.append(head + self._id() + tail)
                if len(chunk) == 50_000:
                    out.write("\n".join(chunk) + "\n")
                    chunk.clear()
            if chunk:
                out.write("\n".join(chunk) + "\n")
        return path.stat().st_size


# --------------------------------------------------------------------------------------------
# The contenders, each run in a child process: `--child NAME --input F --output F`
# --------------------------------------------------------------------------------------------


def _bench_names() -> Any:
    """What StagedJob.write_items derives with: a job's worth of agent and topic names (ours
    and the loop both write the converted columns plus the derived ones: channel, names,
    rich-content HTML as plain text)."""
    from gladly_archive.item_derive import ReferenceNames

    return ReferenceNames(
        agents={f"agent{n}": f"Agent {n}" for n in range(200)},
        topics={f"topic{n}": f"Topic {n}" for n in range(100)},
    )


# Raw pyarrow's free-text leaves: what ours keeps as ``text`` and ``recording_summary``.
_RAW_FREE_TEXT = {"content.content", "content.body", "content.recordingSummary.summary"}


def _options(schema: Any, compression: str) -> dict[str, Any]:
    """The archive's writer options (writer.parquet_options: free text without dictionaries
    or min/max statistics, every other column with both), with --compression: one rule for
    every contender. Raw pyarrow's inferred schema types its free text as plain strings, so
    its counterparts of our free-text columns are named (_RAW_FREE_TEXT)."""
    import io

    import pyarrow.parquet as pq

    from gladly_archive.schemas import ITEMS
    from gladly_archive.writer import parquet_options

    if schema.equals(ITEMS):
        return {**parquet_options(schema), "compression": compression}
    sink = io.BytesIO()
    pq.write_table(schema.empty_table(), sink)
    described = pq.ParquetFile(io.BytesIO(sink.getvalue())).schema
    leaves = [described.column(i).path for i in range(len(described))]
    coded = [leaf for leaf in leaves if leaf not in _RAW_FREE_TEXT]
    assert len(coded) == len(leaves) - len(_RAW_FREE_TEXT), "a free-text leaf is missing"
    return {"compression": compression, "use_dictionary": coded, "write_statistics": coded}


def run_ours(source: Path, target: Path, compression: str, block_mb: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from gladly_archive.convert import ConvertStats, convert_items_file
    from gladly_archive.item_derive import derive_items
    from gladly_archive.schemas import ITEMS

    names = _bench_names()
    stats = ConvertStats()
    started = time.perf_counter()
    with pq.ParquetWriter(target, ITEMS, **_options(ITEMS, compression)) as writer:
        for batch in convert_items_file(
            source,
            job_id="bench",
            archived_at=datetime.now(UTC),
            stats=stats,
            block_bytes=block_mb << 20,
        ):
            writer.write_batch(derive_items(batch, names))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": stats.rows, "quarantined": stats.quarantined}


def run_raw(source: Path, target: Path, compression: str, block_mb: int) -> dict[str, Any]:
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    started = time.perf_counter()
    rows = 0
    reader = pj.open_json(source, read_options=pj.ReadOptions(block_size=block_mb << 20))
    with pq.ParquetWriter(target, reader.schema, **_options(reader.schema, compression)) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return {"seconds": time.perf_counter() - started, "rows": rows}


def run_loop(source: Path, target: Path, compression: str, block_mb: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gladly_archive.convert_fallback import item_error, item_row
    from gladly_archive.item_derive import derive_items
    from gladly_archive.schemas import CONVERTED_ITEMS, ITEMS

    names = _bench_names()

    def batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
        return derive_items(pa.RecordBatch.from_pylist(rows, schema=CONVERTED_ITEMS), names)

    started = time.perf_counter()
    archived = int(time.time() * 1_000_000)
    rows = bad = 0
    pending: list[dict[str, Any]] = []
    options = _options(ITEMS, compression)
    with pq.ParquetWriter(target, ITEMS, **options) as writer, source.open("rb") as f:
        for raw in f:
            text = raw.rstrip(b"\r\n").decode("utf-8")
            if not text.strip():
                continue
            record = json.loads(text)
            if item_error(record) is not None:
                bad += 1
                continue
            pending.append(item_row(record, text, "bench", archived))
            if len(pending) == 10_000:
                writer.write_batch(batch(pending))
                rows += len(pending)
                pending.clear()
        if pending:
            writer.write_batch(batch(pending))
            rows += len(pending)
    return {"seconds": time.perf_counter() - started, "rows": rows, "quarantined": bad}


CONTENDERS = {"ours": run_ours, "raw": run_raw, "loop": run_loop}


@dataclass
class Run:
    """One contender on one file, as measured from outside its process."""

    name: str
    seconds: float | None  # None: it failed
    rows: int
    cpu: float
    peak_rss_mb: float
    error: str = ""


def measure(name: str, source: Path, workdir: Path, compression: str, block_mb: int) -> Run:
    """Run one contender in a child process; its own peak RSS comes from wait4."""
    target = workdir / f"{name}.parquet"
    command = [
        sys.executable,
        __file__,
        "--child",
        name,
        "--input",
        str(source),
        "--output",
        str(target),
        "--compression",
        compression,
        "--block-mb",
        str(block_mb),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        # The child's own peak RSS and CPU time, not this process's carried into it (_peak).
        finished = run_measured(command, stdout=stdout, stderr=stderr, env=env)
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    target.unlink(missing_ok=True)
    rss_mb, cpu = finished.rss_mb, finished.cpu_s
    if finished.exit != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["(no message)"]
        return Run(name, None, 0, cpu, rss_mb, last[0][:160])
    result = json.loads(out)
    return Run(name, result["seconds"], result["rows"], cpu, rss_mb)


def best(runs: list[Run]) -> Run:
    done = [r for r in runs if r.seconds is not None]
    return min(done, key=lambda r: r.seconds or 0.0) if done else runs[0]


def line_of(label: str, run: Run, size: int) -> str:
    if run.seconds is None:
        return f"  {label:<34} FAILED: {run.error}"
    return (
        f"  {label:<34} {run.seconds:7.2f} s  {size / 1e6 / run.seconds:6.1f} MB/s  "
        f"cpu {run.cpu:6.1f} s  peak RSS {run.peak_rss_mb:6.0f} MB  ({run.rows:,} rows)"
    )


def bench_size(count: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Build both files for `count` items and time every contender on them."""
    real = workdir / f"items_{count}.jsonl"
    inferable = workdir / f"items_{count}_inferable.jsonl"
    for path, flag in ((real, False), (inferable, True)):
        if not path.exists():
            started = time.perf_counter()
            size = ItemsFile(seed=count, inferable=flag).write(path, count)
            print(
                f"built {path.name}: {size / 1e6:.0f} MB, {size / count:.0f} B/line "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
    size_real, size_inferable = real.stat().st_size, inferable.stat().st_size
    options = (workdir, args.compression, args.block_mb)
    ours: list[Run] = []
    raw: list[Run] = []
    ours_real: list[Run] = []
    for _ in range(args.repeat):  # interleaved, so a burst of other work hits both
        raw.append(measure("raw", inferable, *options))
        ours.append(measure("ours", inferable, *options))
        ours_real.append(measure("ours", real, *options))
    raw_real = measure("raw", real, *options)
    loop = measure("loop", inferable, *options)
    o, r, o_real = best(ours), best(raw), best(ours_real)
    print(f"\n{count:,} items")
    print(line_of("ours (inferable file)", o, size_inferable))
    print(line_of("raw pyarrow (inferable file)", r, size_inferable))
    print(line_of("per-record loop (inferable file)", loop, size_inferable))
    print(line_of("ours (real-shaped file)", o_real, size_real))
    print(line_of("raw pyarrow (real-shaped file)", raw_real, size_real))
    ratio_raw = (o.seconds or 0) / (r.seconds or float("inf"))
    ratio_loop = (loop.seconds or 0) / (o.seconds or float("inf"))
    print(f"  ours / raw pyarrow = {ratio_raw:.2f}   loop / ours = {ratio_loop:.1f}")
    return {
        "ratio_raw": ratio_raw,
        "ratio_loop": ratio_loop,
        "rss": max(run.peak_rss_mb for run in ours + ours_real),
        "files": (real, inferable),
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--also", type=int, default=0, help="a second, larger size (RSS flat?)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the files")
    parser.add_argument("--repeat", type=int, default=1, help="runs of ours and raw; best kept")
    parser.add_argument("--block-mb", type=int, default=8, help="ours' default: 8 MB")
    parser.add_argument("--compression", default="zstd")
    parser.add_argument("--child", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        runner = CONTENDERS[args.child]
        print(json.dumps(runner(args.input, args.output, args.compression, args.block_mb)))
        return

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="export_throughput_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"files in {workdir}; writer compression={args.compression}, block {args.block_mb} MB")
    results = {}
    try:
        for count in [args.items] + ([args.also] if args.also else []):
            results[count] = bench_size(count, args, workdir)
            if not args.keep:
                for path in results[count]["files"]:
                    path.unlink(missing_ok=True)
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print("\ngoals")
    for count, result in results.items():
        ratio_raw, ratio_loop, rss = result["ratio_raw"], result["ratio_loop"], result["rss"]
        print(
            f"  {count:>9,}: ours/raw {ratio_raw:.2f} ≤ {GOAL_RAW_RATIO} "
            f"{verdict(ratio_raw <= GOAL_RAW_RATIO)}; loop/ours {ratio_loop:.1f} ≥ "
            f"{GOAL_LOOP_RATIO:.0f} {verdict(ratio_loop >= GOAL_LOOP_RATIO)}; peak RSS "
            f"{rss:.0f} MB ≤ {GOAL_RSS_MB:.0f} {verdict(rss <= GOAL_RSS_MB)}"
        )
    if args.also:
        small, large = results[args.items]["rss"], results[args.also]["rss"]
        print(
            f"  RSS flat: {large:.0f} MB at {args.also:,} vs {small:.0f} MB at {args.items:,} "
            f"(≤ {GOAL_RSS_GROWTH:.2f} x) {verdict(large <= small * GOAL_RSS_GROWTH)}"
        )


if __name__ == "__main__":
    main()
