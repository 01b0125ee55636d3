"""Policy texts the flow tests plan with (one place, so the tests agree on what they mean)."""

from __future__ import annotations

from datetime import UTC, datetime

# The sandbox's "now" in the engine tests.
NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)

INACTIVE = """
name: delete-inactive
description: Profiles with no contact for 400 days.
resource: customer
filters:
  - type: age
    field: last_activity
    older_than: 400
actions:
  - type: delete_customer
    close_open_conversations: {close}
limits: {{max_percent: 100}}
"""
CALLS = """
name: redact-old-calls
description: Call and voicemail recordings after a year.
resource: item
filters:
  - type: channel
    in: [PHONE_CALL, VOICEMAIL]
  - type: age
    field: item_time
    older_than: P365D
actions:
  - type: redact_items
limits: {max_percent: 100, max_targets: 100000}
"""
# Inactive profiles deleted (open conversations closed first), and old recordings redacted.
INACTIVE_AND_CALLS = INACTIVE.format(close="true") + "---\n" + CALLS
# Customers of one loyalty tier a year after their last contact: a custom attribute, which
# only the profile carries (enrichment fetches it for the customers the age selects).
TIER_LAPSED = """\
name: lapsed-{tier}
description: Customers of tier {tier} a year after their last contact.
resource: customer
filters:
  - type: age
    field: last_activity
    older_than: P1Y
  - type: custom_attribute
    key: loyaltyTier
    op: eq
    value: {tier}
actions:
  - type: delete_customer
limits: {{max_percent: 100, max_targets: 100000}}
"""
