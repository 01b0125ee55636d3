"""Every problem the policy loader reports: file, line, dotted key, message and choices."""

from __future__ import annotations

import textwrap
import tracemalloc
from pathlib import Path

import pytest

from retention_policies.holds import HoldRegistry
from retention_policies.loader import PolicyProblem, PolicyValidationError, load_policies

GOOD = """\
name: good-policy
description: Customers gone three years are deleted.
resource: customer
filters:
  - type: age
    field: last_activity
    older_than: P3Y
actions:
  - type: delete_customer
"""

FILTER_TYPES = [
    "age", "and", "channel", "conversation_status", "custom_attribute",
    "inbox", "not", "or", "topic", "value",
]  # fmt: skip
REDACTABLE = [
    "CHAT_MESSAGE", "CUSTOMER_ACTIVITY", "EMAIL", "PHONE_CALL", "SMS", "TWITTER", "VOICEMAIL",
    "WHATSAPP",
]  # fmt: skip


def with_line(n: int, new: str) -> str:
    """GOOD with its line n (1-based) replaced."""
    lines = GOOD.splitlines()
    lines[n - 1] = new
    return "\n".join(lines) + "\n"


def with_filter(block: str, resource: str = "customer", action: str = "delete_customer") -> str:
    """A policy whose filters are the given YAML block (starting at line 5)."""
    head = f"name: good-policy\ndescription: d\nresource: {resource}\nfilters:\n"
    tail = f"actions:\n  - type: {action}\n"
    return head + textwrap.indent(textwrap.dedent(block), "  ") + tail


NO_FILTERS = GOOD.replace(
    "filters:\n  - type: age\n    field: last_activity\n    older_than: P3Y\n", "filters: []\n"
)
CONV = ("conversation", "erase_conversation")

# (policy text, key, line, message fragment, choices)
CASES: list[tuple[str, str, str, int | None, str, list[str]]] = [
    ("name slug", with_line(1, "name: Bad Name"), "name", 1, "must be 3-63 characters", []),
    ("name missing", GOOD.replace("name: good-policy\n", ""), "name", 1, "missing required", []),
    ("empty description", with_line(2, "description: '  '"), "description", 2, "what the", []),
    ("bad enabled", GOOD + "enabled: yes-please\n", "enabled", 10, "boolean", []),
    (
        "unknown resource",
        with_line(3, "resource: customers"),
        "resource",
        3,
        "unknown resource 'customers'",
        ["contact", "conversation", "customer", "item"],
    ),
    (
        "unknown top key",
        GOOD + "limit: {max_targets: 3}\n",
        "limit",
        10,
        "unknown key 'limit'",
        ["actions", "description", "enabled", "filters", "limits", "name", "resource"],
    ),
    (
        "typo of type",
        with_line(5, "  - typ: age"),
        "filters[0].typ",
        5,
        "unknown key 'typ'",
        ["type"],
    ),
    (
        "unknown filter type",
        with_line(5, "  - type: agee"),
        "filters[0].type",
        5,
        "unknown filter type 'agee'",
        FILTER_TYPES,
    ),
    (
        "age field for another resource",
        with_line(6, "    field: item_time"),
        "filters[0].field",
        6,
        "unknown age field 'item_time'",
        ["last_activity"],
    ),
    (
        "bad duration",
        with_line(7, "    older_than: P3Q"),
        "filters[0].older_than",
        7,
        "ISO 8601",
        [],
    ),
    (
        "negative days",
        with_line(7, "    older_than: -3"),
        "filters[0].older_than",
        7,
        "positive",
        [],
    ),
    (
        "both durations",
        with_line(7, "    older_than: 30\n    newer_than: 10"),
        "filters[0]",
        5,
        "exactly one of 'older_than' or 'newer_than'",
        ["newer_than", "older_than"],
    ),
    (
        "unknown key in filter",
        with_line(7, "    older_tham: P3Y"),
        "filters[0].older_tham",
        7,
        "unknown key 'older_tham'",
        ["field", "newer_than", "older_than", "type"],
    ),
    ("empty filters", NO_FILTERS, "filters", 4, "at least 1", []),
    (
        "filter not for resource",
        with_filter("- {type: inbox, in: [VIP]}\n"),
        "filters[0].type",
        5,
        "does not apply to resource 'customer'",
        ["age", "and", "custom_attribute", "not", "or", "value"],
    ),
    (
        "unknown channel",
        with_filter("- {type: channel, in: [SMSS]}\n", "item", "redact_items"),
        "filters[0].in",
        5,
        "unknown content type 'SMSS'",
        sorted(
            [
                "CHAT_MESSAGE",
                "EMAIL",
                "SMS",
                "PHONE_CALL",
                "VOICEMAIL",
                "WHATSAPP",
                "TWITTER",
                "FACEBOOK_MESSAGE",
                "INSTAGRAM_DIRECT",
                "CONVERSATION_NOTE",
                "CUSTOMER_ACTIVITY",
                "TOPIC_CHANGE",
                "CONVERSATION_STATUS_CHANGE",
                "VOICE_AI_MESSAGE",
                "CUSTOM_CHANNEL_MESSAGE",
            ]
        ),
    ),
    (
        "in and not_in",
        with_filter("- {type: inbox, in: [a], not_in: [b]}\n", *CONV),
        "filters[0]",
        5,
        "exactly one of 'in' or 'not_in'",
        ["in", "not_in"],
    ),
    (
        "empty inbox list",
        with_filter("- {type: inbox, in: []}\n", *CONV),
        "filters[0]",
        5,
        "must not be empty",
        [],
    ),
    (
        "topic both",
        with_filter("- {type: topic, any_of: [a], none_of: [b]}\n", *CONV),
        "filters[0]",
        5,
        "exactly one of 'any_of' or 'none_of'",
        ["any_of", "none_of"],
    ),
    (
        "unknown status",
        with_filter("- {type: conversation_status, in: [DONE]}\n", *CONV),
        "filters[0].in",
        5,
        "unknown conversation status 'DONE'",
        ["CLOSED", "OPEN", "WAITING"],
    ),
    (
        "unknown op",
        with_filter("- {type: custom_attribute, key: tier, op: equals, value: x}\n"),
        "filters[0].op",
        5,
        "unknown op 'equals'",
        ["eq", "exists", "gt", "gte", "in", "lt", "lte", "missing", "ne", "not_in"],
    ),
    (
        "exists with value",
        with_filter("- type: custom_attribute\n  key: tier\n  op: exists\n  value: 3\n"),
        "filters[0].value",
        8,
        "takes no 'value'",
        [],
    ),
    (
        "eq without value",
        with_filter("- {type: custom_attribute, key: tier, op: eq}\n"),
        "filters[0].value",
        5,
        "needs a 'value'",
        [],
    ),
    (
        "in with scalar",
        with_filter("- {type: custom_attribute, key: tier, op: in, value: gold}\n"),
        "filters[0].value",
        5,
        "non-empty list",
        [],
    ),
    (
        "in with nested list",
        with_filter("- {type: custom_attribute, key: tier, op: in, value: [[a]]}\n"),
        "filters[0].value",
        5,
        "only strings, numbers and booleans",
        [],
    ),
    (
        "eq with list",
        with_filter("- {type: custom_attribute, key: tier, op: eq, value: [a]}\n"),
        "filters[0].value",
        5,
        "single string",
        [],
    ),
    (
        "gt with boolean",
        with_filter("- {type: custom_attribute, key: tier, op: gt, value: true}\n"),
        "filters[0].value",
        5,
        "cannot compare a boolean",
        [],
    ),
    (
        "value field unknown",
        with_filter("- {type: value, field: has_attachments, op: eq, value: true}\n"),
        "filters[0].field",
        5,
        "unknown fact field 'has_attachments'",
        ["conversation_count", "has_open_conversation", "item_count"],
    ),
    (
        "nested typo",
        with_filter(
            "- type: not\n  filter:\n    type: age\n    field: last_activity\n"
            "    older_than: P1Y\n    extra: 1\n"
        ),
        "filters[0].filter.extra",
        10,
        "unknown key 'extra'",
        ["field", "newer_than", "older_than", "type"],
    ),
    (
        "nested unknown type",
        with_filter("- type: or\n  filters:\n    - type: nope\n"),
        "filters[0].filters[0].type",
        7,
        "unknown filter type 'nope'",
        FILTER_TYPES,
    ),
    (
        "filter not a mapping",
        with_filter("- age\n"),
        "filters[0]",
        5,
        "mapping",
        [],
    ),
    (
        "action for another resource",
        with_line(9, "  - type: erase_conversation"),
        "actions[0].type",
        9,
        "does not apply to resource 'customer'",
        ["delete_customer"],
    ),
    (
        "unknown action",
        with_line(9, "  - type: delete"),
        "actions[0].type",
        9,
        "unknown action type 'delete'",
        ["delete_customer", "erase_contact", "erase_conversation", "redact_items"],
    ),
    (
        "two actions",
        GOOD + "  - type: delete_customer\n",
        "actions",
        8,
        "at most 1",
        [],
    ),
    (
        "action option typo",
        with_line(9, "  - {type: delete_customer, close_open: true}"),
        "actions[0].close_open",
        9,
        "unknown key 'close_open'",
        ["close_open_conversations", "type"],
    ),
    (
        "non-redactable content type",
        with_filter("- {type: channel, in: [SMS]}\n", "item", "redact_items").replace(
            "redact_items", "redact_items\n    content_types: [CONVERSATION_NOTE]"
        ),
        "actions[0].content_types",
        8,
        "can neither redact nor delete",
        REDACTABLE,
    ),
    (
        "max_targets zero",
        GOOD + "limits: {max_targets: 0}\n",
        "limits.max_targets",
        10,
        "greater than 0",
        [],
    ),
    (
        "max_percent above 100",
        GOOD + "limits:\n  max_percent: 150\n",
        "limits.max_percent",
        11,
        "less than or equal to 100",
        [],
    ),
    (
        "limits typo",
        GOOD + "limits: {max_pct: 5}\n",
        "limits.max_pct",
        10,
        "unknown key 'max_pct'",
        ["max_percent", "max_targets"],
    ),
    ("duplicate key", GOOD + "name: again\n", "name", 10, "duplicate key 'name'", []),
    ("not a mapping", "- just\n- a list\n", "(document)", 1, "must be a mapping", []),
    ("yaml syntax", GOOD + "filters: [unclosed\n", "(document)", None, "not valid YAML", []),
]


@pytest.mark.parametrize(
    ("text", "key", "line", "fragment", "choices"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_each_problem_is_located_and_explained(
    tmp_path: Path, text: str, key: str, line: int | None, fragment: str, choices: list[str]
) -> None:
    file = tmp_path / "policy.yaml"
    file.write_text(text)
    with pytest.raises(PolicyValidationError) as caught:
        load_policies(file)
    matching = [p for p in caught.value.problems if p.key == key and fragment in p.message]
    assert matching, f"no {key!r} problem with {fragment!r} in:\n{caught.value}"
    problem = matching[0]
    assert problem.file == str(file)
    if line is not None:
        assert problem.line == line
    else:
        assert problem.line is not None
    assert problem.choices == choices


def test_the_good_policy_loads(tmp_path: Path) -> None:
    file = tmp_path / "policy.yaml"
    file.write_text(GOOD)
    [policy] = load_policies(file)
    assert policy.name == "good-policy"


def test_every_problem_of_every_file_is_collected(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(with_line(5, "  - type: agee") + "extra: 1\n")
    (tmp_path / "b.yml").write_text(with_line(3, "resource: nope"))
    (tmp_path / "ignored.txt").write_text("not: a policy")
    with pytest.raises(PolicyValidationError) as caught:
        load_policies(tmp_path)
    found = {(Path(p.file).name, p.key) for p in caught.value.problems}
    assert found == {("a.yaml", "filters[0].type"), ("a.yaml", "extra"), ("b.yml", "resource")}


def test_several_documents_per_file_and_duplicate_names_across_files(tmp_path: Path) -> None:
    second = GOOD.replace("good-policy", "second-policy")
    (tmp_path / "a.yaml").write_text(GOOD + "---\n" + second)
    assert [p.name for p in load_policies(tmp_path / "a.yaml")] == ["good-policy", "second-policy"]
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(PolicyValidationError) as caught:
        load_policies(tmp_path)
    [problem] = caught.value.problems
    assert (Path(problem.file).name, problem.line, problem.key) == ("b.yaml", 1, "name")
    assert "duplicate policy name 'good-policy'" in problem.message
    assert "a.yaml:1" in problem.message


def test_second_document_lines_count_from_the_file_start(tmp_path: Path) -> None:
    file = tmp_path / "a.yaml"
    file.write_text(GOOD + "---\n" + with_line(1, "name: second").replace("P3Y", "P3Q"))
    with pytest.raises(PolicyValidationError) as caught:
        load_policies(file)
    [problem] = caught.value.problems
    assert (problem.key, problem.line) == ("filters[0].older_than", 10 + 7)


def test_report_is_readable(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(with_line(5, "  - type: agee"))
    with pytest.raises(PolicyValidationError) as caught:
        load_policies(file)
    report = str(caught.value)
    assert report.splitlines()[0] == "1 problem found:"
    assert f"{file}:5: filters[0].type: unknown filter type 'agee' (valid: age, and," in report


def test_problem_str_without_line_or_choices() -> None:
    assert str(PolicyProblem("f.yaml", None, "k", "broken")) == "f.yaml: k: broken"


def test_empty_directory_and_missing_file_are_problems(tmp_path: Path) -> None:
    with pytest.raises(PolicyValidationError, match=r"no \*\.yaml files"):
        load_policies(tmp_path)
    with pytest.raises(PolicyValidationError, match="no such file"):
        load_policies(tmp_path / "absent.yaml")


def _alias_bomb(levels: int = 9) -> str:
    """A few hundred bytes of YAML whose aliases expand to 9**levels strings ("billion laughs")."""
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for n in range(1, levels + 1):
        text += f"a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 9) + "]\n"
    return text


def test_an_alias_bomb_is_refused_at_once_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb())
    tracemalloc.start()
    try:
        with pytest.raises(PolicyValidationError) as caught:
            load_policies(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "aliases (*name) are not allowed" in str(caught.value)
    assert peak < 5 * 2**20  # it was never expanded


def test_a_holds_file_with_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "holds.yaml"
    bomb.write_text(_alias_bomb())
    with pytest.raises(PolicyValidationError, match="aliases"):
        HoldRegistry.load(bomb, key=b"k")


def test_a_policy_file_over_a_megabyte_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 120_000)
    with pytest.raises(PolicyValidationError, match="over the 1,048,576-byte limit"):
        load_policies(big)
