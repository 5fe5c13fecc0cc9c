"""Where the meter steps sit in the pipeline: their order is part of what they promise."""

from __future__ import annotations

from gateway.proxy.pipeline import REQUEST_STEPS, RESPONSE_STEPS


def names(steps) -> list[str]:
    return [step.__name__ for step in steps]


def test_meters_are_checked_after_the_scope_check_and_just_before_forwarding():
    # A call the allow-rules refuse is never metered, and a refused call never reaches the upstream.
    request = names(REQUEST_STEPS)
    assert request.index("check_scope") < request.index("check_meters")
    assert request[request.index("check_meters") + 1] == "forward"


def test_values_are_counted_after_listings_are_filtered():
    response = names(RESPONSE_STEPS)
    assert response.index("filter_listings") < response.index("count_response_values")
