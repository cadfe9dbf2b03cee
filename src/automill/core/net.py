"""Addresses: whether a host name or address is the local machine's loopback."""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``127.0.0.2``, ``::1``, ``[::1]``, ``localhost`` -> True; ``0.0.0.0``, names -> False."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
