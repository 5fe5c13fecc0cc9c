"""Which gateway control evidences which control of SOC 2, ISO/IEC 27001, HIPAA and GDPR: the
control-mapping section of the PDF summary.

References: the AICPA 2017 Trust Services Criteria (SOC 2, revised points of focus 2022), ISO/IEC
27001:2022 Annex A, the HIPAA Security and Privacy Rules (45 CFR Part 164) and the GDPR (EU
2016/679). A mapping says what the gateway's records help show; it is not a finding that the control
is met, which needs the assessor's judgement of the whole system.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ControlMapping:
    """One gateway control, what in the export evidences it, and the framework controls it supports."""

    control: str
    evidence: str
    soc2: str
    iso27001: str
    hipaa: str
    gdpr: str


CONTROL_MAPPINGS: tuple[ControlMapping, ...] = (
    ControlMapping(
        "One credential per agent; tokens stored hashed, shown once; expiry, revocation, rotation",
        "Per-agent table; credential lifecycle",
        "CC6.1, CC6.2, CC6.3",
        "A.5.16, A.5.17, A.5.18, A.8.5",
        "164.312(a)(2)(i), 164.312(d)",
        "Art. 32(1)(b)",
    ),
    ControlMapping(
        "Deny by default: each credential calls only the tools and routes its allow-rules name",
        "Denials by reason; policy changes",
        "CC6.1, CC6.3",
        "A.5.15, A.8.3",
        "164.312(a)(1), 164.308(a)(4)",
        "Art. 25(2), Art. 32(1)(b)",
    ),
    ControlMapping(
        "Rate limits and usage meters per agent and tool",
        "Rate-limit hits",
        "A1.1, CC6.6",
        "A.8.6",
        "-",
        "Art. 32(1)(b)",
    ),
    ControlMapping(
        "Response filtering and redaction of personal and secret data before it reaches an agent",
        "Redaction counts; filtered items",
        "CC6.7, C1.1",
        "A.8.11, A.8.12",
        "164.502(b), 164.514(d)",
        "Art. 5(1)(c), Art. 25(1)",
    ),
    ControlMapping(
        "Tool definitions pinned; a changed definition is held until approved",
        "Tool events; policy changes",
        "CC7.1, CC8.1",
        "A.8.9, A.5.21",
        "164.308(a)(1)(ii)(B)",
        "Art. 32(1)(d)",
    ),
    ControlMapping(
        "Every call recorded (who, which tool, decision, reason); trail sealed with signed Merkle roots",
        "This export, its signed manifest and verify_export",
        "CC7.2, CC7.3, CC4.1",
        "A.8.15, A.5.28",
        "164.312(b), 164.312(c)(1), 164.308(a)(1)(ii)(D)",
        "Art. 5(2), Art. 30, Art. 33(5)",
    ),
    ControlMapping(
        "Configuration change log: actor, source, time and diff of every change, secrets masked",
        "Policy changes; credential lifecycle",
        "CC8.1, CC6.2",
        "A.8.9, A.8.32",
        "164.308(a)(1)(ii)(D), 164.312(b)",
        "Art. 5(2)",
    ),
    ControlMapping(
        "Upstream secrets encrypted at rest and never passed to agents",
        "(configuration; not in the event data)",
        "CC6.1, CC6.7",
        "A.8.24",
        "164.312(a)(2)(iv), 164.312(e)(2)(ii)",
        "Art. 32(1)(a)",
    ),
)
