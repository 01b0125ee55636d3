"""Topics on a conversation: adding them through the API, and the org's "topics required" rule."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gladly_sandbox import tables as t
from gladly_sandbox.errors import ApiError
from gladly_sandbox.traits import topic_rows

if TYPE_CHECKING:
    from gladly_sandbox.content import Renderer
    from gladly_sandbox.orgdata import OrgData

# Documented (PATCH /conversations/{id}, 400 example "topics required before closing").
TOPICS_REQUIRED_DETAIL = "topics are required before closing of conversation"


class TopicOperations:
    """`add_topics` of an Organisation (mixed into it; relies on its state below)."""

    data: OrgData
    lock: threading.RLock
    render: Renderer
    topics_required_to_close: bool

    # Provided by ItemOperations and EventOperations; declared so the MRO finds them.
    _conversation_row: Callable[..., int]
    _append_item: Callable[[int, int, int], int]
    _emit_conversation: Callable[..., None]
    _assignee: Callable[[int], dict[str, str]]
    _api_initiator: Callable[[], dict[str, str]]

    def add_topics(self, conversation_id: str, body: Any) -> None:
        """`POST /conversations/{id}/topics`: add topics; those already there are ignored.

        Each call that adds something leaves one TOPIC_CHANGE item (initiator API) naming the
        topics it added, and one `CONVERSATION/TOPIC_ADDED` event per topic. 404 (no body
        documented) for an unknown conversation; 400 naming `topicIds` for a bad body.
        """
        with self.lock:
            conv = self._conversation_row(conversation_id, quirk="empty")
            wanted = _parse_topic_ids(body, self.data)
            current = set(self.current_topics(conv))
            new = [topic for topic in dict.fromkeys(wanted) if topic not in current]
            if not new:
                return  # documented: a topic already on the conversation is ignored
            # ASSUMPTION: Gladly records the change on the timeline as the UI's changes are, as
            # a TOPIC_CHANGE item initiated by the API; topics may be added to a closed one too.
            item = self._append_item(conv, t.K_TOPIC_CHANGE, t.R_API)
            self.data.items.added_topics[item] = tuple(new)
            self.data.convs.added_topics.setdefault(conv, []).extend(new)
            api = self._api_initiator()
            for topic in new:
                self._emit_conversation(
                    "CONVERSATION/TOPIC_ADDED",
                    conv,
                    self._assignee(conv),
                    api,
                    topicId=self.data.topics[topic].id,
                )

    def current_topics(self, conv: int) -> tuple[int, ...]:
        """Topic rows on conversation row `conv` now (generated, then added through the API)."""
        return topic_rows(self.data, conv, self.render.traits(conv))

    def _check_topics_for_close(self, conv: int) -> None:
        """400 while the org requires topics on close and the conversation has none."""
        if self.topics_required_to_close and not self.current_topics(conv):
            raise ApiError(400, "invalid_state", TOPICS_REQUIRED_DETAIL)


def _parse_topic_ids(body: Any, data: OrgData) -> list[int]:
    """Topic rows named by `{"topicIds": [...]}`; 400 naming `topicIds` otherwise."""
    # The spec marks the list required (spelled `topicIDs` in its `required`, `topicIds` in its
    # properties and example; the example's spelling is the one taken). Codes and details of the
    # 400s are not documented beyond "Invalid field(s) in request body" (ASSUMPTION).
    ids = body.get("topicIds") if isinstance(body, dict) else None
    if ids is None or ids == []:
        raise ApiError(400, "blank", "'topicIds' cannot be blank", attr="topicIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise ApiError(400, "invalid", "topicIds must be a list of topic ids", attr="topicIds")
    rows = {topic.id: n for n, topic in enumerate(data.topics)}
    result = []
    # The detail never echoes what was sent: a caller's mistake may hold anything.
    for topic_id in ids:
        row = rows.get(topic_id)
        if row is None:
            raise ApiError(
                400, "invalid", "topicIds names a topic that does not exist", attr="topicIds"
            )
        if data.topics[row].disabled:
            # ASSUMPTION: a disabled topic cannot be added (the UI does not offer it).
            raise ApiError(400, "invalid", "topicIds names a disabled topic", attr="topicIds")
        result.append(row)
    return result
