"""Calls and voicemails: their content, recordings (as small MP3s) and voice transcripts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gladly_sandbox import tables as t
from gladly_sandbox.tables import digits_for, mix64, render_time
from gladly_sandbox.texts import THEMES
from gladly_sandbox.traits import ConversationTraits, conversation_traits

if TYPE_CHECKING:
    from gladly_sandbox.orgdata import OrgData
    from gladly_sandbox.profiles import Customer

SECOND = 1_000_000
# ASSUMPTION: this share of available recordings has no transcript (GET voice-transcript → 404).
TRANSCRIPT_MISSING_PER_MILLE = 80
# Recordings are served as this many seconds of silent mono 32 kbps MP3, whatever their length.
RECORDING_SECONDS = 3


class VoiceContent:
    """The voice part of the Renderer (mixed into it; relies on the members declared here)."""

    data: OrgData
    traits: Callable[[int], ConversationTraits]

    def item(self, row: int) -> dict[str, Any]:
        raise NotImplementedError

    def _line(self, conv: int, role: int, customer: Customer, h: int, stage: int) -> str:
        raise NotImplementedError

    def _time(self, micros: int, h: int) -> str:
        raise NotImplementedError

    def _call(
        self, row: int, kind: int, inbound: bool, conv: int, customer: Customer, number: str, h: int
    ) -> dict[str, Any]:
        data = self.data
        ts = data.items.ts[row]
        duration = 20 + (h >> 11) % 900 if kind == t.K_PHONE_CALL else 5 + (h >> 11) % 90
        status_roll = (h >> 22) % 20
        traits = self.traits(conv) if conv >= 0 else conversation_traits(data, 0)
        theme = THEMES[traits.theme]
        if kind == t.K_VOICEMAIL:
            content: dict[str, Any] = {
                "type": "VOICEMAIL",
                "startedAt": self._time(ts - duration * SECOND, h >> 3),
            }
        else:
            ends = (customer.contact_phone or number, number)
            content = {
                "type": "PHONE_CALL",
                "from": ends[0 if inbound else 1],
                "to": ends[1 if inbound else 0],
            }
            content["startedAt"] = render_time(ts, digits_for(data.ts_key, row))
            if status_roll:
                answered = ts + (3 + (h >> 30) % 40) * SECOND
                completed = min(answered + duration * SECOND, data.now_us)
                duration = max(1, (completed - answered) // SECOND)
                content["answeredAt"] = self._time(answered, h >> 5)
                content["completedAt"] = self._time(completed, h >> 9)
            else:
                content["completedAt"] = self._time(ts + 25 * SECOND, h >> 9)
                return content  # missed call: nothing was recorded
        if status_roll < 2:
            return content  # recording switched off for this call
        if status_roll == 2:
            content["recordingStatus"] = "ERROR"
            return content
        content["recordingStatus"] = "AVAILABLE"
        content["recordingUrl"] = (
            f"/api/v1/conversation-items/{data.item_codec.encode(row)}/media/recording"
        )
        content["recordingDuration"] = int(duration)
        summary_roll = (h >> 34) % 10
        if summary_roll < 8:
            what = "left a voicemail about" if kind == t.K_VOICEMAIL else "called about"
            content["recordingSummary"] = {
                "status": "READY",
                "summary": f"Customer {what} {theme.phrase}; agent {theme.resolution}.",
                "language": "es" if traits.spanish else "en",
            }
        else:
            content["recordingSummary"] = {"status": "PENDING" if summary_roll == 8 else "FAILED"}
        return content

    def has_recording(self, row: int) -> bool:
        """True when the item is a call or voicemail whose recording is available right now."""
        items = self.data.items
        if (
            items.kind[row] not in (t.K_PHONE_CALL, t.K_VOICEMAIL)
            or items.flags[row] & t.F_REDACTED
        ):
            return False
        status: str | None = self.item(row)["content"].get("recordingStatus")
        return status == "AVAILABLE"

    def transcript(self, row: int) -> dict[str, Any] | None:
        """The voice transcript of a recorded call or voicemail, or None when there is none."""
        if not self.has_recording(row):
            return None
        data = self.data
        h = mix64(data.item_key ^ row)
        if (h >> 48) % 1000 < TRANSCRIPT_MISSING_PER_MILLE:
            return None
        items = data.items
        conv, kind = items.conv[row], items.kind[row]
        owner = items.cust[row]
        customer = data.customers[items.author.get(row, owner) if items.author else owner]
        content = self.item(row)["content"]
        duration = float(content["recordingDuration"])
        speakers = 1 if kind == t.K_VOICEMAIL else 2
        paragraphs = []
        count = 1 if speakers == 1 else 2 + (h >> 11) % 5
        for n in range(count):
            role = t.R_CUSTOMER if speakers == 1 or n % 2 else t.R_AGENT
            stage = 0 if n <= 1 else (2 if n == count - 1 else 1)
            line = self._line(conv, role, customer, mix64(h + n), stage)
            start, end = duration * n / count, duration * (n + 1) / count
            paragraphs.append(
                {
                    "transcript": line,
                    "speaker": 0 if speakers == 1 else n % 2,
                    "startTime": round(start + 0.5, 2),
                    "endTime": round(max(start + 0.6, end - 0.3), 2),
                }
            )
        done = items.ts[row] + int(duration * SECOND) + 60 * SECOND
        return {
            "paragraphs": paragraphs,
            "customerId": customer.id,
            "numberOfSpeakers": speakers,
            "language": "es" if conv >= 0 and self.traits(conv).spanish else "en",
            "createdAt": render_time(done, 3),
            "updatedAt": render_time(done + 11 * SECOND, 3),
        }


def silent_mp3(seconds: int, title: str) -> bytes:
    """A small, valid MP3: an ID3v2.3 title tag, then silent MPEG-1 Layer III mono frames."""
    text = b"\x00" + title.encode("latin-1", "replace")
    frame = b"TIT2" + len(text).to_bytes(4, "big") + b"\x00\x00" + text
    size = len(frame)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    tag = b"ID3\x03\x00\x00" + syncsafe + frame
    # 32 kbps, 32 kHz, mono: 144-byte frames of 1152 samples (36 ms) each.
    mpeg_frame = b"\xff\xfb\x18\xc4" + bytes(140)
    frames = max(1, round(seconds / 0.036))
    return tag + mpeg_frame * frames
