"""The proxy pipeline: the steps, in order, and the function that runs them.

Request steps run in order until one raises a GatewayError (a local reply). Response steps then
shape what goes back. ``record_audit`` is not in either list: the view runs it once per request,
just before the final body message completes the response (or in ``finally`` for a call that failed
or was cut off), so every request leaves exactly one audit event, on disk before the agent has its
answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from audit.steps import record_audit
from gateway.proxy.context import ProxyContext
from gateway.proxy.steps import (
    authenticate,
    bind_session_id,
    check_auth_failures,
    check_host,
    check_origin,
    forward,
    normalize_path,
    read_body,
    resolve_route,
    resolve_target,
)
from metering.steps import check_meters, count_response_values
from policies.steps import (
    check_scope,
    check_tool_calls,
    filter_listings,
    pin_listed_tools,
    protect_response,
    select_protections,
    validate_arguments,
)

Step = Callable[[ProxyContext], Awaitable[None]]

REQUEST_STEPS: tuple[Step, ...] = (
    check_host,
    normalize_path,
    resolve_target,
    check_origin,
    check_auth_failures,
    authenticate,
    read_body,
    resolve_route,
    bind_session_id,
    check_scope,
    check_tool_calls,
    validate_arguments,
    select_protections,
    check_meters,
    forward,
)

# protect_response runs first so that no later step (nor the meters' values in the audit event) ever
# reads a value a filter or redactor removes; it and the listing steps touch disjoint messages (routed
# calls, listings). pin_listed_tools sees a tools/list result whole (every tool the upstream serves is
# pinned, not only those this credential may call) before filter_listings trims it to the rules.
RESPONSE_STEPS: tuple[Step, ...] = (
    protect_response,
    pin_listed_tools,
    filter_listings,
    count_response_values,
)

FINAL_STEP: Step = record_audit


async def run_pipeline(ctx: ProxyContext) -> None:
    """Run the request steps, then the response steps. A GatewayError propagates to the view."""
    for step in REQUEST_STEPS:
        await step(ctx)
    for step in RESPONSE_STEPS:
        await step(ctx)
