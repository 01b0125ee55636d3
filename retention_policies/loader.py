"""Load policy YAML files, reporting every problem with its file, line, key and valid choices."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from retention_policies.actions import ACTION_TYPES
from retention_policies.filters import (
    FILTER_TYPES,
    AndFilter,
    Filter,
    InboxFilter,
    NotFilter,
    OrFilter,
    TopicFilter,
)
from retention_policies.model import Limits, Policy
from retention_policies.references import References, Unresolved

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong in a policy or holds file, located by file, line and dotted key."""

    file: str
    line: int | None
    key: str
    message: str
    choices: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        valid = f" (valid: {', '.join(self.choices)})" if self.choices else ""
        return f"{where}: {self.key}: {self.message}{valid}"


class PolicyValidationError(ValueError):
    """Raised with every problem found; `str()` is a readable multi-line report."""

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self.report())

    def report(self) -> str:
        """One line per problem, after a count."""
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])

    def __str__(self) -> str:
        return self.report()


def dotted(path: Sequence[str | int]) -> str:
    """('filters', 1, 'type') -> 'filters[1].type'; the empty path is '(document)'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


class _Located:
    """YAML text turned into Python data plus the line of every key and list item."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}
        self.problems: list[tuple[Path_, int, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def convert(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    key = str(key)
                line = key_node.start_mark.line + 1
                if key in out:
                    self.problems.append(((*path, key), line, f"duplicate key {key!r}"))
                    continue
                self.lines[(*path, key)] = line
                out[key] = self.convert(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def line(self, path: Sequence[str | int]) -> int | None:
        probe = tuple(path)
        while probe not in self.lines and probe:
            probe = probe[:-1]
        return self.lines.get(probe)


# A policy or holds file is a page of YAML: anything larger is refused before it is read.
MAX_FILE_BYTES = 1 << 20


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases: `*name` could expand a 2 KB file into gigabytes ("billion laughs")
    when the document is walked, and a policy never needs one."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed: write the value out", event.start_mark
            )
        node: yaml.Node | None = super().compose_node(parent, index)
        return node


def read_text_bounded(file: Path, label: str, limit: int = MAX_FILE_BYTES) -> str | PolicyProblem:
    """The file's text, or the problem: unreadable, or over `limit` bytes (checked first)."""
    try:
        size = file.stat().st_size
        if size > limit:
            return PolicyProblem(
                label,
                None,
                "(document)",
                f"the file is {size:,} bytes, over the {limit:,}-byte limit; split it",
            )
        return file.read_text(encoding="utf-8")
    except OSError as exc:  # the label names the file: its reason alone, not the path again
        return PolicyProblem(label, None, "(document)", f"cannot read: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        return PolicyProblem(label, None, "(document)", f"cannot read: not UTF-8 text ({exc})")


def read_yaml_documents(
    file: Path, label: str
) -> tuple[list[tuple[Any, _Located]], list[PolicyProblem]]:
    """Every YAML document of a file as (data, located) pairs, or the problem: a file over
    MAX_FILE_BYTES, invalid YAML, or an alias (refused before anything is expanded)."""
    text = read_text_bounded(file, label)
    if isinstance(text, PolicyProblem):
        return [], [text]
    try:
        nodes = list(yaml.compose_all(text, Loader=_NoAliasLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return [], [PolicyProblem(label, line, "(document)", f"not valid YAML: {exc.problem}")]
    except yaml.YAMLError as exc:
        return [], [PolicyProblem(label, None, "(document)", f"cannot read: {exc}")]
    docs: list[tuple[Any, _Located]] = []
    problems: list[PolicyProblem] = []
    for node in nodes:
        if node is None:
            continue
        located = _Located()
        try:
            data = located.convert(node, ())
        except yaml.YAMLError as exc:
            problems.append(PolicyProblem(label, node.start_mark.line + 1, "(document)", str(exc)))
            continue
        problems += [PolicyProblem(label, ln, dotted(p), msg) for p, ln, msg in located.problems]
        docs.append((data, located))
    return docs, problems


_UNIONS: dict[str, dict[str, type[BaseModel]]] = {"filter": FILTER_TYPES, "action": ACTION_TYPES}
_CHILDREN: dict[str, Any] = {
    "filters": ("list", "filter"),
    "filter": "filter",
    "actions": ("list", "action"),
    "limits": Limits,
}


def _walk(loc: Sequence[str | int]) -> tuple[list[str | int], Any]:
    """Drop pydantic's union-tag steps from an error location; also return what it points at."""
    out: list[str | int] = []
    cur: Any = Policy
    for part in loc:
        if isinstance(cur, str) and cur in _UNIONS:
            if isinstance(part, str) and part in _UNIONS[cur]:
                cur = _UNIONS[cur][part]
                continue
            cur = None
        out.append(part)
        if isinstance(cur, tuple):
            cur = cur[1]
        elif isinstance(cur, type) and issubclass(cur, BaseModel):
            cur = _CHILDREN.get(str(part))
        else:
            cur = None
    return out, cur


def _field_names(model: type[BaseModel]) -> list[str]:
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _data_at(data: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _unknown_keys(data: Any, union: str) -> list[str]:
    """Keys of a mapping that no member of the union knows (a typo of `type`, most likely)."""
    if not isinstance(data, dict):
        return []
    known = {n for m in _UNIONS[union].values() for n in _field_names(m)}
    return [str(k) for k in data if k not in known]


def _problems(
    error: ErrorDetails, label: str, located: _Located, prefix: Path_, data: Any
) -> list[PolicyProblem]:
    """The problems one pydantic error stands for (usually one)."""
    if error["type"] == "union_tag_not_found":
        path, target = _walk(error["loc"])
        union = target if isinstance(target, str) else "filter"
        typos = _unknown_keys(_data_at(data, path), union)
        if typos:
            out = []
            for key in typos:
                full = (*prefix, *path, key)
                out.append(
                    PolicyProblem(
                        label, located.line(full), dotted(full), f"unknown key {key!r}", ["type"]
                    )
                )
            return out
    return [_problem(error, label, located, prefix)]


def _problem(error: ErrorDetails, label: str, located: _Located, prefix: Path_) -> PolicyProblem:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    path, target = _walk(error["loc"])
    choices: list[str] = [str(c) for c in ctx.get("choices", [])]
    message = error["msg"]
    if isinstance(ctx.get("at"), str):
        path = [*path, ctx["at"]]
    if kind == "extra_forbidden":
        _parent, parent_model = _walk(error["loc"][:-1])
        if isinstance(parent_model, type) and issubclass(parent_model, BaseModel):
            choices = _field_names(parent_model)
        message = f"unknown key {path[-1]!r}"
    elif kind == "missing":
        message = f"missing required key {path[-1]!r}"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        union = target if isinstance(target, str) else "filter"
        choices = sorted(_UNIONS.get(union, FILTER_TYPES))
        if kind == "union_tag_invalid":
            message = f"unknown {union} type {ctx.get('tag')!r}"
            path = [*path, "type"]
        else:
            message = f"missing key 'type' (every {union} names its type)"
    elif kind == "model_attributes_type" or kind == "model_type":
        message = "expected a mapping of keys to values"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    full = prefix + tuple(path)
    return PolicyProblem(label, located.line(full), dotted(full), message, choices)


def validate_document(
    data: Any, located: _Located, label: str
) -> tuple[Policy | None, list[PolicyProblem]]:
    """One YAML document as a Policy, or every problem in it."""
    if not isinstance(data, dict):
        line = located.line(())
        return None, [PolicyProblem(label, line, "(document)", "a policy must be a mapping")]
    resource = data.get("resource")
    try:
        policy = Policy.model_validate(data, context={"resource": resource})
    except ValidationError as exc:
        problems = [p for e in exc.errors() for p in _problems(e, label, located, (), data)]
        return None, sorted(problems, key=lambda p: p.line or 0)
    return policy, []


def policy_files(path: str | Path) -> list[Path]:
    """A file, or every *.yaml / *.yml directly in a directory, sorted by name."""
    root = Path(path)
    if root.is_dir():
        return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [root]


def _iter_policies(
    path: str | Path,
) -> Iterator[tuple[Policy | None, str, _Located | None, list[PolicyProblem]]]:
    files = policy_files(path)
    if not files:
        yield (
            None,
            str(path),
            None,
            [PolicyProblem(str(path), None, "(document)", "no *.yaml files")],
        )
    for file in files:
        label = str(file)
        if not file.exists():
            yield None, label, None, [PolicyProblem(label, None, "(document)", "no such file")]
            continue
        docs, problems = read_yaml_documents(file, label)
        if problems:
            yield None, label, None, problems
        for data, located in docs:
            policy, doc_problems = validate_document(data, located, label)
            yield policy, label, located, doc_problems


def named_values(filters: Sequence[Filter], path: Path_) -> Iterator[tuple[str, str, Path_]]:
    """(kind, value, path) of every inbox and topic a filter list names, nested ones too."""
    for i, flt in enumerate(filters):
        yield from _named_in(flt, (*path, i))


def _named_in(flt: Filter, here: Path_) -> Iterator[tuple[str, str, Path_]]:
    if isinstance(flt, InboxFilter):
        key, values = ("in", flt.in_) if flt.in_ is not None else ("not_in", flt.not_in)
        yield from (("inbox", v, (*here, key, j)) for j, v in enumerate(values or []))
    elif isinstance(flt, TopicFilter):
        key, values = ("any_of", flt.any_of) if flt.any_of is not None else ("none_of", flt.none_of)
        yield from (("topic", v, (*here, key, j)) for j, v in enumerate(values or []))
    elif isinstance(flt, AndFilter | OrFilter):
        yield from named_values(flt.filters, (*here, "filters"))
    elif isinstance(flt, NotFilter):
        yield from _named_in(flt.filter, (*here, "filter"))


def reference_problems(
    pairs: Sequence[tuple[str, str, Path_]], references: References, label: str, located: Any
) -> list[PolicyProblem]:
    """A problem for every inbox or topic name that resolves to no id (with the valid names)."""
    problems = []
    for kind, value, path in pairs:
        resolved = references.resolve(kind, value)
        if isinstance(resolved, Unresolved):
            line = located.line(path) if located is not None else None
            problems.append(
                PolicyProblem(label, line, dotted(path), resolved.message, resolved.choices)
            )
    return problems


def load_policies(path: str | Path, *, references: References | None = None) -> list[Policy]:
    """Every policy of a file or a directory; raises PolicyValidationError with all problems.

    With `references` (the archive's inboxes and topics) every inbox and topic a filter names
    must resolve to an id: an unknown name is a problem listing the valid ones. Planning always
    passes them; without them only the files themselves are checked."""
    policies: list[Policy] = []
    problems: list[PolicyProblem] = []
    seen: dict[str, str] = {}
    for policy, label, located, found in _iter_policies(path):
        problems += found
        if policy is None or located is None:
            continue
        line = located.line(("name",))
        if policy.name in seen:
            problems.append(
                PolicyProblem(
                    label,
                    line,
                    "name",
                    f"duplicate policy name {policy.name!r} (first in {seen[policy.name]})",
                )
            )
            continue
        seen[policy.name] = f"{label}:{line}"
        if references is not None:
            named = list(named_values(policy.filters, ("filters",)))
            unresolved = reference_problems(named, references, label, located)
            if unresolved:
                problems += unresolved
                continue
        policies.append(policy)
    if problems:
        raise PolicyValidationError(problems)
    return policies
