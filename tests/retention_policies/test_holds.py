"""Legal holds: keyed hashes, end dates, YAML and CSV files, and errors that never echo values."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime
from pathlib import Path

import pytest

from gladly_archive.keyed import keyed_hash
from retention_policies.holds import HoldRegistry
from retention_policies.loader import PolicyValidationError

KEY = b"test-audit-key"
HASH = "a" * 64


def test_keyed_hash_normalises_then_hmacs() -> None:
    expected = hmac.new(KEY, b"jane@example.com", hashlib.sha256).hexdigest()
    assert keyed_hash("  Jane@Example.COM ", kind="email", key=KEY) == expected
    assert keyed_hash("+1 (555) 010-2000", kind="phone", key=KEY) == keyed_hash(
        "+15550102000", kind="phone", key=KEY
    )
    assert keyed_hash("jane@example.com", kind="email", key=b"other") != expected
    with pytest.raises(ValueError, match="key"):
        keyed_hash("x", kind="email", key=b"")


YAML = f"""\
holds:
  - kind: customer_id
    value: cust-1
    reason: Litigation Smith v. Acme
    reference: LEGAL-1
  - kind: email_hash
    value: {HASH}
    reason: Regulator inquiry
    reference: LEGAL-2
    ends_on: 2025-06-30
  - kind: custom_attribute
    value: legalReview=true
    reason: Review
    reference: LEGAL-3
"""


def test_yaml_holds_and_end_dates(tmp_path: Path) -> None:
    file = tmp_path / "holds.yaml"
    file.write_text(YAML)
    registry = HoldRegistry.load(file, key=KEY)
    assert len(registry.holds) == 3
    assert len(registry.active(date(2025, 6, 30))) == 3  # the end date itself still holds
    active = registry.active(datetime(2025, 7, 1, 0, 0))
    assert [h.kind for h in active] == ["customer_id", "custom_attribute"]
    assert registry.active_values("customer_id", date(2030, 1, 1)) == {"cust-1"}


def test_csv_holds_match_yaml_and_hash_ignores_order(tmp_path: Path) -> None:
    (tmp_path / "holds.yaml").write_text(YAML)
    (tmp_path / "holds.csv").write_text(
        "kind,value,reason,reference,ends_on\n"
        "custom_attribute,legalReview=true,Review,LEGAL-3,\n"
        f"email_hash,{HASH},Regulator inquiry,LEGAL-2,2025-06-30\n"
        "customer_id,cust-1,Litigation Smith v. Acme,LEGAL-1,\n"
    )
    from_yaml = HoldRegistry.load(tmp_path / "holds.yaml", key=KEY)
    from_csv = HoldRegistry.load(tmp_path / "holds.csv", key=KEY)
    assert from_yaml.hash == from_csv.hash
    changed = from_yaml.add("topic", "Fraud", reason="r", reference="LEGAL-4")
    assert changed.hash != from_yaml.hash


def test_add_hashes_a_clear_email_and_write_never_stores_it(tmp_path: Path) -> None:
    registry = HoldRegistry.empty(key=KEY).add(
        "email", "Jane@Example.com", reason="Litigation", reference="LEGAL-9"
    )
    [hold] = registry.holds
    assert hold.kind == "email_hash"
    assert hold.value == registry.hash_email("jane@example.com")
    file = tmp_path / "holds.yaml"
    registry.write(file)
    assert "jane" not in file.read_text().lower()
    assert HoldRegistry.load(file, key=KEY).hash == registry.hash


@pytest.mark.parametrize(
    ("row", "key", "fragment", "choices"),
    [
        ("kind: email_hash\n    value: jane@example.com", "holds[0].value", "clear email", []),
        ("kind: phone_hash\n    value: '+1 555 010 2000'", "holds[0].value", "clear phone", []),
        ("kind: email_hash\n    value: abc", "holds[0].value", "64-hex-digit", []),
        (
            "kind: email\n    value: jane@example.com",
            "holds[0].kind",
            "clear emails",
            ["email_hash"],
        ),
        (
            "kind: customer\n    value: c1",
            "holds[0].kind",
            "unknown hold kind",
            [
                "conversation_id",
                "custom_attribute",
                "customer_id",
                "email_hash",
                "inbox",
                "phone_hash",
                "topic",
            ],
        ),
        ("kind: customer_id\n    value: ''", "holds[0].value", "missing value", []),
        ("kind: custom_attribute\n    value: tier", "holds[0].value", "key=value", []),
        ("kind: customer_id\n    value: jane@example.com", "holds[0].value", "looks like", []),
    ],
)
def test_bad_hold_rows(
    tmp_path: Path, row: str, key: str, fragment: str, choices: list[str]
) -> None:
    file = tmp_path / "holds.yaml"
    file.write_text(f"holds:\n  - {row}\n    reason: r\n    reference: T-1\n")
    with pytest.raises(PolicyValidationError) as caught:
        HoldRegistry.load(file, key=KEY)
    [problem] = caught.value.problems
    assert (problem.key, problem.choices) == (key, choices)
    assert fragment in problem.message
    assert problem.line in (2, 3)
    assert "jane" not in str(caught.value).lower()
    assert "555" not in str(caught.value)


def test_missing_reason_reference_bad_date_and_unknown_key(tmp_path: Path) -> None:
    file = tmp_path / "holds.yaml"
    file.write_text(
        "holds:\n  - kind: topic\n    value: Fraud\n    ends_on: someday\n    ticket: X\n"
    )
    with pytest.raises(PolicyValidationError) as caught:
        HoldRegistry.load(file, key=KEY)
    found = {(p.key, p.line) for p in caught.value.problems}
    assert found == {
        ("holds[0].reason", 2),
        ("holds[0].reference", 2),
        ("holds[0].ends_on", 4),
        ("holds[0].ticket", 5),
    }


def test_csv_problems_name_the_row_line(tmp_path: Path) -> None:
    file = tmp_path / "holds.csv"
    file.write_text(
        "kind,value,reason,reference,ends_on\n"
        "customer_id,c1,r,T-1,\n"
        "email_hash,jane@example.com,r,T-2,\n"
    )
    with pytest.raises(PolicyValidationError) as caught:
        HoldRegistry.load(file, key=KEY)
    [problem] = caught.value.problems
    assert (problem.line, problem.key) == (3, "row 2.value")
    assert "jane" not in str(caught.value)


def test_csv_unknown_column_and_yaml_top_level(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("kind,value,reason,ref\n")
    with pytest.raises(PolicyValidationError, match="unknown column 'ref'"):
        HoldRegistry.load(tmp_path / "h.csv", key=KEY)
    (tmp_path / "h.yaml").write_text("hold: []\n")
    with pytest.raises(PolicyValidationError, match="unknown key 'hold'"):
        HoldRegistry.load(tmp_path / "h.yaml", key=KEY)


def test_an_empty_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text("holds: []\n")
    with pytest.raises(ValueError, match="key"):
        HoldRegistry.load(tmp_path / "h.yaml", key=b"")


def test_matching_checks_one_subject_against_every_hold_kind() -> None:
    from datetime import date

    from retention_policies.holds import HeldConversation, HoldRegistry

    key = b"k"
    reg = HoldRegistry.empty(key=key)
    reg = reg.add("customer_id", "c1", reason="r", reference="L-1")
    reg = reg.add("email", "Someone@Example.com ", reason="r", reference="L-2")
    reg = reg.add("phone", "+1 (555) 010-0000", reason="r", reference="L-3")
    reg = reg.add("custom_attribute", "legalReview=true", reason="r", reference="L-4")
    reg = reg.add("conversation_id", "v9", reason="r", reference="L-5")
    reg = reg.add("inbox", "VIP Support", reason="r", reference="L-6")
    reg = reg.add("topic", "t-bill", reason="r", reference="L-7")
    reg = reg.add("customer_id", "c2", reason="r", reference="L-8", ends_on=date(2020, 1, 1))
    now = date(2025, 1, 1)
    assert reg.matching(now, customer_id="c3") == []
    assert reg.matching(now, customer_id="c2") == []  # that hold has ended
    assert reg.matching(now, customer_id="c1") == ["customer_id=c1 [L-1]"]
    email = reg.hash_email("someone@example.com")
    assert len(reg.matching(now, email_hashes=[email])) == 1
    assert len(reg.matching(now, phone_hashes=[reg.hash_phone("+15550100000")])) == 1
    assert len(reg.matching(now, custom_attributes={"legalReview": True})) == 1
    assert reg.matching(now, custom_attributes={"legalReview": "false"}) == []
    names = {"inboxes": {"VIP Support": ["ib-vip"]}, "topics": {}}
    vip = HeldConversation("v1", inbox_id="ib-vip", topic_ids=())
    assert reg.matching(now, conversations=[vip], names=names) == ["inbox=VIP Support [L-6]"]
    billing = HeldConversation("v2", inbox_id="ib-x", topic_ids=("t-bill",))
    assert reg.matching(now, conversations=[billing]) == ["topic=t-bill [L-7]"]
    # v9's inbox is not known: the inbox hold cannot be evaluated, so it holds too
    assert reg.matching(now, conversations=[HeldConversation("v9", inbox_id="ib-x")]) == [
        "conversation_id=v9 [L-5]"
    ]
    assert reg.matching(now, conversations=[HeldConversation("v9")]) == [
        "conversation_id=v9 [L-5]",
        "inbox=VIP Support [L-6] (cannot be evaluated: not fetched)",
    ]
    # attributes never fetched: the custom_attribute hold cannot be evaluated, so it holds
    assert reg.matching(now, customer_id="c3", attributes_known=False) == [
        "custom_attribute=legalReview=true [L-4] (cannot be evaluated: not fetched)"
    ]
