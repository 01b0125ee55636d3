"""Debug logging of every library under the client carries no email or phone from a search."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from gladly_client import GladlyClient
from gladly_sandbox import Sandbox

NOW = datetime(2026, 5, 20, 9, tzinfo=UTC)


def test_search_values_never_reach_a_log_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Sandbox(seed=3, customers=5, now=NOW, frozen_clock=True, rate_limit_per_second=None) as sb:
        record = sb.org.raw_customer(sb.org.customer_ids()[0])
        assert record is not None
        email = record["emails"][0]["original"]
        with GladlyClient(sb.base_url, sb.user, sb.api_token, requests_per_second=100.0) as c:
            assert c.customers.find(email=email)
            c.customers.find(phone="+15550100000")
    lines = [r.getMessage() for r in caplog.records]
    assert any("urllib3" in r.name for r in caplog.records)  # urllib3 did log the requests
    for line in lines:
        assert email not in line
        assert email.replace("@", "%40") not in line
        assert "5550100000" not in line
