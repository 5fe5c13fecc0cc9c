"""The API key formats the ``api_key`` detector knows, each a provider's documented token shape.

Every format starts with a fixed, provider-specific prefix, which keeps false positives rare and the
scan cheap. A format is listed only when its prefix is distinctive; bare hex or base64 secrets
(AWS secret access keys, Twilio auth tokens) cannot be told apart from ids and are not detected.

=========================  ==========================================================
Provider                   Shape
=========================  ==========================================================
AWS access key id          ``AKIA`` / ``ASIA`` / ``ABIA`` / ``ACCA`` + 16 of ``A-Z0-9``
GitHub                     ``ghp_`` / ``gho_`` / ``ghs_`` / ``ghu_`` / ``ghr_`` + 36+,
                           ``github_pat_`` + 22+
GitLab                     ``glpat-`` / ``gldt-`` / ``glrt-`` / ``glptt-`` / ``gloas-`` + 20+
Slack                      ``xoxa-`` / ``xoxb-`` / ``xoxp-`` / ``xoxr-`` / ``xoxs-`` + 10+,
                           ``xapp-``, and ``hooks.slack.com/services/`` webhook URLs
Stripe                     ``sk_live_`` / ``rk_live_`` / ``pk_live_`` (and ``_test_``), ``whsec_``
Anthropic                  ``sk-ant-`` + 20+
OpenAI                     ``sk-`` / ``sk-proj-`` / ``sk-svcacct-`` / ``sk-admin-`` + 20+
Google API key             ``AIza`` + 35
Hugging Face               ``hf_`` + 30+
npm / PyPI                 ``npm_`` + 36, ``pypi-AgEIcHlwaS5vcmc`` + 50+
SendGrid                   ``SG.`` + 22 + ``.`` + 43
DigitalOcean               ``dop_v1_`` / ``doo_v1_`` / ``dor_v1_`` + 64 hex
Groq / xAI                 ``gsk_`` + 52, ``xai-`` + 80
Shopify                    ``shpat_`` / ``shpca_`` / ``shppa_`` / ``shpss_`` + 32 hex
=========================  ==========================================================
"""

from __future__ import annotations

from typing import Final

_TAIL: Final = "[A-Za-z0-9_-]"

# Possessive quantifiers (``++``, ``{m,}+``): a token never gives characters back, so a long
# near-miss costs one pass, not a backtracking search.
API_KEY_FORMATS: Final[tuple[tuple[str, str], ...]] = (
    ("aws_access_key_id", r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("github_token", r"gh[pousr]_[A-Za-z0-9]{36,}+"),
    ("github_fine_grained_pat", r"github_pat_[A-Za-z0-9_]{22,}+"),
    ("gitlab_token", rf"gl(?:pat|dt|rt|ptt|oas)-{_TAIL}{{20,}}+"),
    ("slack_token", r"xox[abprs]-[A-Za-z0-9-]{10,}+"),
    ("slack_app_token", r"xapp-[0-9]-[A-Za-z0-9-]{10,}+"),
    ("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}+"),
    ("stripe_secret_key", r"sk_(?:live|test)_[A-Za-z0-9]{10,}+"),
    ("stripe_restricted_key", r"rk_(?:live|test)_[A-Za-z0-9]{10,}+"),
    ("stripe_publishable_key", r"pk_(?:live|test)_[A-Za-z0-9]{10,}+"),
    ("stripe_webhook_secret", r"whsec_[A-Za-z0-9]{20,}+"),
    ("anthropic_key", rf"sk-ant-{_TAIL}{{20,}}+"),
    ("openai_key", rf"sk-(?:proj-|svcacct-|admin-)?{_TAIL}{{20,}}+"),
    ("google_api_key", rf"AIza{_TAIL}{{35}}(?![A-Za-z0-9_-])"),
    ("huggingface_token", r"hf_[A-Za-z0-9]{30,}+"),
    ("npm_token", r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    ("pypi_token", rf"pypi-AgEIcHlwaS5vcmc{_TAIL}{{50,}}+"),
    ("sendgrid_key", rf"SG\.{_TAIL}{{22}}\.{_TAIL}{{43}}(?![A-Za-z0-9_-])"),
    ("digitalocean_token", r"do[opr]_v1_[a-f0-9]{64}(?![a-f0-9])"),
    ("groq_key", r"gsk_[A-Za-z0-9]{52}(?![A-Za-z0-9])"),
    ("xai_key", r"xai-[A-Za-z0-9]{80}(?![A-Za-z0-9])"),
    ("shopify_token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![a-fA-F0-9])"),
)


def api_key_pattern() -> str:
    """One alternation of every format (the detector drops matches inside a longer token).

    The formats are grouped by their first character, each group in the table's order: only one
    group can match at a position, and within it the same format wins as in the flat alternation
    (:func:`flat_api_key_pattern`), so the matches are the same; the engine then tries one group
    at a candidate position instead of all 22 formats, a quarter less time on JSON text.
    """
    groups: dict[str, list[str]] = {}
    for _, pattern in API_KEY_FORMATS:
        first, rest = pattern[0], pattern[1:]
        if not first.isalnum() or rest[:1] in ("*", "+", "?", "{"):
            raise ValueError(f"an API key format must start with a literal character: {pattern!r}")
        groups.setdefault(first, []).append(rest)
    return "|".join(
        f"{first}(?:{'|'.join(f'(?:{rest})' for rest in rests)})" for first, rests in groups.items()
    )


def flat_api_key_pattern() -> str:
    """Every format as one flat alternation, in the table's order: what ``api_key_pattern`` matches."""
    return "|".join(f"(?:{pattern})" for _, pattern in API_KEY_FORMATS)
