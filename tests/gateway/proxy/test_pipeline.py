"""The pipeline's order is part of its contract: each step relies on the ones before it."""

from gateway.proxy.pipeline import FINAL_STEP, REQUEST_STEPS, RESPONSE_STEPS


def test_request_steps_run_in_the_documented_order():
    # A blocked address is refused before its credential is looked up, hashed or verified.
    assert [step.__name__ for step in REQUEST_STEPS][:10] == [
        "check_host",
        "normalize_path",
        "resolve_target",
        "check_origin",
        "check_auth_failures",
        "authenticate",
        "read_body",
        "resolve_route",
        "bind_session_id",
        "check_scope",
    ]
    assert REQUEST_STEPS[-1].__name__ == "forward"
    # A held tool or invalid arguments are refused before protections are chosen and meters counted.
    assert [step.__name__ for step in REQUEST_STEPS][10:13] == [
        "check_tool_calls",
        "validate_arguments",
        "select_protections",
    ]


def test_responses_are_protected_first_then_listings_pinned_and_trimmed_and_audit_comes_last():
    # No later step (nor the meters' values in the audit event) reads what a filter or redactor removes;
    # tools are pinned from the whole listing, before it is trimmed to what the credential may call.
    assert [step.__name__ for step in RESPONSE_STEPS][:3] == [
        "protect_response",
        "pin_listed_tools",
        "filter_listings",
    ]
    assert FINAL_STEP.__name__ == "record_audit"


def test_every_step_documents_what_it_reads_writes_or_raises():
    for step in (*REQUEST_STEPS, *RESPONSE_STEPS, FINAL_STEP):
        doc = step.__doc__ or ""
        assert "Reads" in doc, step.__name__
