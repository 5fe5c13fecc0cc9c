"""Session ids are bound to the credential and target that opened them, without a store."""

import pytest

from gateway.proxy.sessions import SessionMalformed, SessionNotOwned, bind_session, unbind_session


def test_bound_session_id_unbinds_for_its_owner_only():
    agent_id = bind_session(credential_id=1, target_id=2, upstream_id="abc123")
    assert "abc123" not in agent_id
    assert unbind_session(credential_id=1, target_id=2, agent_id=agent_id) == "abc123"
    with pytest.raises(SessionNotOwned):
        unbind_session(credential_id=9, target_id=2, agent_id=agent_id)
    with pytest.raises(SessionNotOwned):
        unbind_session(credential_id=1, target_id=3, agent_id=agent_id)


def test_a_tampered_upstream_id_is_refused():
    agent_id = bind_session(credential_id=1, target_id=2, upstream_id="abc123")
    forged = (
        bind_session(credential_id=1, target_id=2, upstream_id="other").split(".")[0]
        + "."
        + agent_id.split(".")[1]
    )
    with pytest.raises(SessionNotOwned):
        unbind_session(credential_id=1, target_id=2, agent_id=forged)


@pytest.mark.parametrize("agent_id", ["plain-upstream-id", ".", "!!!.tag"])
def test_ids_the_gateway_never_issued_are_malformed(agent_id):
    with pytest.raises(SessionMalformed):
        unbind_session(credential_id=1, target_id=2, agent_id=agent_id)
