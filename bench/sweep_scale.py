"""How fast and how exact the sensitive-data sweep is over ≥ 1 GB of archived text.

    .venv/bin/python bench/sweep_scale.py [--gigabytes 1.0] [--quick] [--keep]

Builds (vectorised: words taken from a vocabulary with numpy and joined by Arrow offsets, no
Python loop per row) an items-like Parquet corpus of support messages under a temp dir: ids,
content type and `text`, with the usual numbers of such text at a low rate (order numbers,
amounts, times, dates, phone numbers, tracking ids). Into it go seeded rows, each holding one
token: valid numbers (cards of eight issuers, compact, spaced and dashed; US SSNs with dashes or
spaces; German and British IBANs, compact and grouped) and look-alikes (order numbers and
references, tracking ids, phone numbers, dates and timestamps, Luhn-invalid 16-digit runs,
longer runs holding a valid card, invalid SSNs and bare 9-digit runs, IBANs with a bad check).

Then, over the same rows read back from Parquet: (a) the sweep's scan (`scan_batches`: RE2 in
Arrow selects candidates, stdnum validates them) and (b) the plain Python baseline, one `re`
search per row with the same patterns and the same validation — MB/s per core (text bytes per
CPU second of the process), and the ratio a/b. Goal: ≥ 50 MB/s per core. Precision: findings
in rows not seeded with a valid number (false positives, goal 0) and seeded valid numbers not
found exactly (misses, goal 0), per category.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stdnum import iban as stdnum_iban
from stdnum import luhn

from gladly_archive.schemas import ITEMS
from retention_policies.sensitive import KINDS, candidate_pattern, find_numbers
from retention_policies.sweep import scan_batches

GOAL_MB_S = 50.0
CHUNK_ROWS = 200_000
COLUMNS = ["item_id", "customer_id", "conversation_id", "content_type", "text"]
SCHEMA = pa.schema([ITEMS.field(name) for name in COLUMNS])
# A vocabulary as one string: a word list one word a line would fill a page.
WORDS = (  # noqa: SIM905
    "hi hello thanks thank you please my the a an is was it to for of and on in at with order "
    "package delivery arrived late broken box refund return label replacement charge charged "
    "twice card account login reset email password sorry help can could would you we I they "
    "this that here there today tomorrow week days business still not yet any update tracking "
    "carrier hub city store size color shoe jacket lamp blender jar lid photo damage agent "
    "support team shop best regards Re: Fwd: subject question answer, ok. great! sure? yes no"
).split()
# Numbers such text holds anyway (kept at a low rate, as in real messages).
NUMERIC = [
    "ORD-10458", "ORD-99312", "#48213", "$45.99", "$120.00", "10:30", "3-5", "2026-05-20",
    "5/20", "+1 415 555 2671", "(415) 555-2671", "1Z999AA10123456784", "12", "2", "100%",
]  # fmt: skip


def _text_column(rng: np.random.Generator, rows: int) -> pa.Array:
    """`rows` messages of 20-120 words: words taken with numpy, rows cut by Arrow offsets."""
    vocab = [w + " " for w in WORDS] + [w + " " for w in NUMERIC]
    weights = np.concatenate(
        [1.0 / np.arange(1, len(WORDS) + 1) ** 0.8, np.full(len(NUMERIC), 0.004)]
    )
    lengths = rng.integers(20, 121, rows)
    total = int(lengths.sum())
    taken = pc.take(
        pa.array(vocab, pa.large_string()),
        pa.array(rng.choice(len(vocab), total, p=weights / weights.sum())),
    )
    word_offsets = np.frombuffer(taken.buffers()[1], dtype=np.int64)[: total + 1]
    cuts = word_offsets[np.concatenate([[0], np.cumsum(lengths)])]
    return pa.LargeStringArray.from_buffers(rows, pa.py_buffer(cuts.tobytes()), taken.buffers()[2])


# --- seeded tokens: (category, kind or None for a look-alike, text) ---------------------------

_ISSUER_PREFIXES = [
    ("4", 16), ("4", 19), ("51", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16),
    ("3528", 16), ("36", 14), ("62", 16), ("6759", 16), ("2200", 16),
]  # fmt: skip


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, n))


def _card(rng: np.random.Generator) -> str:
    prefix, length = _ISSUER_PREFIXES[rng.integers(len(_ISSUER_PREFIXES))]
    body = prefix + _digits(rng, length - len(prefix) - 1)
    return body + luhn.calc_check_digit(body)


def _grouped(digits: str, sep: str) -> str:
    if len(digits) in (14, 15):
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _written_card(rng: np.random.Generator) -> str:
    card = _card(rng)
    sep = ["", " ", "-"][rng.integers(3)]
    return _grouped(card, sep) if sep else card


def _ssn(rng: np.random.Generator) -> str:
    area = int(rng.integers(1, 900))
    area = 667 if area == 666 else area
    parts = (
        f"{area:03d}",
        f"{int(rng.integers(1, 100)):02d}",
        f"{int(rng.integers(1, 10000)):04d}",
    )
    return ["-", " "][rng.integers(2)].join(parts)


def _iban(rng: np.random.Generator) -> str:
    if rng.integers(2):
        country, bban = "DE", _digits(rng, 18)
    else:
        bank = "".join(chr(65 + int(c)) for c in rng.integers(0, 26, 4))
        country, bban = "GB", bank + _digits(rng, 14)
    number = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
    if rng.integers(2):
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


def _bad_luhn(rng: np.random.Generator) -> str:
    card = _card(rng)
    while len(card) != 16:
        card = _card(rng)
    wrong = str((int(card[-1]) + 1 + int(rng.integers(9))) % 10)
    digits = card[:-1] + wrong
    return _grouped(digits, " ") if rng.integers(2) else digits


def _bad_iban(rng: np.random.Generator) -> str:
    compact = _iban(rng).replace(" ", "")
    position = 4 + int(rng.integers(len(compact) - 4))
    while not compact[position].isdigit():
        position = 4 + int(rng.integers(len(compact) - 4))
    changed = str((int(compact[position]) + 1) % 10)
    return compact[:position] + changed + compact[position + 1 :]


def _longer_run(rng: np.random.Generator) -> str:
    """A valid card inside a run of 20-22 digits (longer than any card, so never one itself)."""
    card = _card(rng)
    pad = 20 + int(rng.integers(3)) - len(card)
    if rng.integers(2):
        return card + _digits(rng, pad)
    return _digits(rng, pad) + card


VALID: dict[str, Callable[[np.random.Generator], str]] = {
    "card": _written_card,
    "ssn": _ssn,
    "iban": _iban,
}
LOOK_ALIKES: dict[str, Callable[[np.random.Generator], str]] = {
    "order number": lambda r: f"ORD-{_card(r)}" if r.integers(2) else f"order {_digits(r, 10)}",
    "reference": lambda r: f"#{_card(r)}",
    "tracking id": lambda r: (
        f"1Z{_digits(r, 3)}AA{_digits(r, 11)}"
        if r.integers(2)
        else _grouped("94" + _digits(r, 20), " ")
    ),
    "phone number": lambda r: [
        f"+1 ({_digits(r, 3)}) {_digits(r, 3)}-{_digits(r, 4)}",
        f"+1 {_digits(r, 3)} {_digits(r, 3)} {_digits(r, 4)}",
        f"+44 20 {_digits(r, 4)} {_digits(r, 4)}",
        f"+49{_digits(r, 11)}",
    ][r.integers(4)],
    "date or timestamp": lambda r: [
        "2026-05-20T09:00:00.123456Z",
        f"2026{_digits(r, 4)}093000{_digits(r, 3)}",
        f"17{_digits(r, 11)}",
        "20/05/2026 10:30",
    ][r.integers(4)],
    "invalid Luhn 16 digits": _bad_luhn,
    "longer run holding a card": _longer_run,
    "invalid or bare SSN": lambda r: [
        f"000-{_digits(r, 2)}-{_digits(r, 4)}",
        f"666-{_digits(r, 2)}-{_digits(r, 4)}",
        f"9{_digits(r, 2)}-{_digits(r, 2)}-{_digits(r, 4)}",
        f"{int(r.integers(100, 900)):03d}{_digits(r, 6)}",
    ][r.integers(4)],
    "IBAN with a bad check": _bad_iban,
}
SEEDED_CATEGORIES = [*VALID, *LOOK_ALIKES]


def build(
    path: Path, gigabytes: float, valid: int, look_alikes: int, seed: int = 18
) -> tuple[dict[str, tuple[str, str, int, int]], int]:
    """Write the corpus; return the seeded rows (item id → category, kind, span) and its bytes."""
    rng = np.random.default_rng(seed)
    target = int(gigabytes * 1e9)
    # ~350 bytes a row (70 words on average): the seeded rows spread over this many chunks;
    # chunks are added until the text reaches the target.
    chunks = max(1, round(target / (CHUNK_ROWS * 350)))
    truth: dict[str, tuple[str, str, int, int]] = {}
    written = 0
    chunk = -1
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        while written < target:
            chunk += 1
            seeded_text = []
            for n in range(valid // chunks + look_alikes // chunks if chunk < chunks else 0):
                is_valid = n < valid // chunks
                table = VALID if is_valid else LOOK_ALIKES
                category = list(table)[n % len(table)]
                token = table[category](rng)
                before = "Hi, here it is: " if n % 2 else "ok "
                text = f"{before}{token} thanks, see you"
                item_id = f"seed-{chunk}-{n}"
                kind = category if is_valid else ""
                truth[item_id] = (category, kind, len(before), len(before) + len(token))
                seeded_text.append(text)
            rows = CHUNK_ROWS - len(seeded_text)
            text = pa.concat_arrays(
                [pa.array(seeded_text, pa.large_string()), _text_column(rng, rows)]
            )
            ids = [f"seed-{chunk}-{n}" for n in range(len(seeded_text))]
            ids += [f"item-{chunk}-{n}" for n in range(rows)]
            customers = pc.cast(pa.array(rng.integers(0, 10**7, CHUNK_ROWS)), pa.string())
            written += int(pc.sum(pc.binary_length(text)).as_py())
            writer.write_table(
                pa.table(
                    {
                        "item_id": pa.array(ids, pa.string()),
                        "customer_id": customers,
                        "conversation_id": customers,
                        "content_type": pa.array(["CHAT_MESSAGE"] * CHUNK_ROWS, pa.string()),
                        "text": text,
                    },
                    schema=SCHEMA,
                ),
                row_group_size=CHUNK_ROWS // 4,
            )
    return truth, written


def python_baseline(batches: list[pa.RecordBatch]) -> Counter[tuple[str, str]]:
    """The plain-Python way: every row through `re`, then the same validation."""
    pattern = re.compile(candidate_pattern(KINDS))
    found: Counter[tuple[str, str]] = Counter()
    for batch in batches:
        ids = batch.column("item_id").to_pylist()
        for item_id, text in zip(ids, batch.column("text").to_pylist(), strict=True):
            if text and pattern.search(text):
                for number in find_numbers(text, KINDS):
                    found[(item_id, number.kind)] += 1
    return found


def _timed(work: Callable[[], object]) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure(path: Path, truth: dict[str, tuple[str, str, int, int]], text_bytes: int) -> None:
    """Read the corpus, time both scans over the same batches, and judge precision."""
    table, read_s, _ = _timed(lambda: pq.read_table(path))
    assert isinstance(table, pa.Table)
    batches = table.to_batches(max_chunksize=65_536)
    mb = text_bytes / 1e6
    print(f"read {table.num_rows:,} rows, {mb:,.0f} MB of text, in {read_s:.1f} s")
    scan, scan_s, scan_cpu = _timed(lambda: scan_batches(batches, KINDS, fields=("text",)))
    base, base_s, base_cpu = _timed(lambda: python_baseline(batches))
    ours_rate, base_rate = mb / scan_cpu, mb / base_cpu
    print(
        f"(a) sweep scan: {scan_s:.1f} s wall, {scan_cpu:.1f} s CPU = {ours_rate:,.0f} MB/s per "
        f"core ({ours_rate / GOAL_MB_S:.1f}x the {GOAL_MB_S:.0f} MB/s goal); "
        f"{scan.candidate_rows:,} candidate rows validated"  # type: ignore[attr-defined]
    )
    print(
        f"(b) Python re loop: {base_s:.1f} s wall, {base_cpu:.1f} s CPU = {base_rate:,.0f} MB/s "
        f"per core; a/b speed-up {ours_rate / base_rate:.1f}x"
    )
    findings = scan.findings.to_pylist()  # type: ignore[attr-defined]
    ours = Counter((f["item_id"], f["kind"]) for f in findings)
    print(f"both find the same numbers: {ours == base}")
    false_positives: Counter[str] = Counter()
    hits: set[str] = set()
    for f in findings:
        category, kind, start, end = truth.get(f["item_id"], ("background text", "", -1, -1))
        if kind == f["kind"] and (f["start"], f["end"]) == (start, end):
            hits.add(f["item_id"])
        else:
            false_positives[category] += 1
    seeded = Counter(category for category, _, _, _ in truth.values())
    misses = Counter(c for i, (c, k, _, _) in truth.items() if k and i not in hits)
    print("precision, per seeded category (rows seeded: false positives | misses):")
    for category in SEEDED_CATEGORIES:
        kind = "valid" if category in VALID else "look-alike"
        errors = misses[category] if category in VALID else false_positives[category]
        what = "missed" if category in VALID else "false positives"
        print(f"  {kind:10} {category:26} {seeded[category]:6,} seeded: {errors:,} {what}")
    print(f"  background text: {false_positives['background text']:,} false positives")
    print(
        f"total false positives {sum(false_positives.values()):,} (goal 0); "
        f"total misses {sum(misses.values()):,} (goal 0)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0, help="text to build (GB)")
    parser.add_argument("--quick", action="store_true", help="0.05 GB, for a smoke run")
    parser.add_argument("--valid", type=int, default=3_000, help="valid numbers seeded")
    parser.add_argument("--look-alikes", type=int, default=27_000, help="look-alikes seeded")
    parser.add_argument("--keep", action="store_true", help="keep the corpus")
    args = parser.parse_args()
    gigabytes = 0.05 if args.quick else args.gigabytes
    workdir = Path(tempfile.mkdtemp(prefix="sweep_scale_"))
    try:
        path = workdir / "items.parquet"
        started = time.perf_counter()
        truth, text_bytes = build(path, gigabytes, args.valid, args.look_alikes)
        print(
            f"built {text_bytes / 1e9:.2f} GB of text ({path.stat().st_size / 1e6:,.0f} MB "
            f"Parquet) with {len(truth):,} seeded rows in {time.perf_counter() - started:.1f} s"
        )
        measure(path, truth, text_bytes)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
