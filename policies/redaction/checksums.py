"""Checks that turn a pattern match into a detection: Luhn, IBAN mod-97, JWT header, IP address.

Each check takes the matched text and says whether it really is a value of its kind, so that a
sixteen-digit order number failing Luhn, or ``999.1.1.1``, is left alone.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from types import MappingProxyType
from typing import Final

# ISO 13616 registry: total IBAN length per country code (SWIFT IBAN registry, release 2024).
IBAN_LENGTHS: Final = MappingProxyType(
    {
        "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
        "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
        "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
        "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
        "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
        "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
        "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
        "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
        "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
        "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
    }
)  # fmt: skip

_DIGITS: Final = frozenset("0123456789")
_JWT_HEADER_MAX_CHARS: Final = 4096


def luhn_valid(candidate: str) -> bool:
    """True when the digits of ``candidate`` (separators ignored) are 13-19 long and pass Luhn."""
    digits = [ord(char) - 48 for char in candidate if char in _DIGITS]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_prefix_length(compact: str) -> int:
    """Length of the valid IBAN at the start of ``compact`` (no spaces), or 0 when there is none.

    The country code fixes the length (ISO 13616); the first that many characters must pass the
    ISO 7064 mod-97 check. Characters after it are not part of the IBAN.
    """
    length = IBAN_LENGTHS.get(compact[:2], 0)
    if length == 0 or len(compact) < length:
        return 0
    iban = compact[:length]
    rearranged = iban[4:] + iban[:4]
    # A-Z become 10-35; int(char, 36) does exactly that for letters and keeps digits.
    numeric = "".join(str(int(char, 36)) for char in rearranged)
    return length if int(numeric) % 97 == 1 else 0


def jwt_header_valid(token: str) -> bool:
    """True when the first dot-separated part of ``token`` is base64url JSON with an ``alg`` string."""
    header = token.partition(".")[0]
    if len(header) > _JWT_HEADER_MAX_CHARS:
        return False
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        parsed = json.loads(decoded)
    except (binascii.Error, ValueError):
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("alg"), str)


def ip_address_valid(candidate: str) -> bool:
    """True when ``candidate`` is an IPv4 or IPv6 address the standard library accepts."""
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def digit_count_between(candidate: str, low: int, high: int) -> bool:
    """True when ``candidate`` holds between ``low`` and ``high`` digits (inclusive)."""
    count = sum(1 for char in candidate if char in _DIGITS)
    return low <= count <= high


def ssn_valid(candidate: str) -> bool:
    """True for a US SSN ``AAA-GG-SSSS`` whose area is not 000, 666 or 9xx, group not 00, serial not 0000."""
    area, group, serial = candidate[:3], candidate[4:6], candidate[7:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
