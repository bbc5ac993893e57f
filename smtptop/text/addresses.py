"""Formatting of packed IP addresses and endpoints for display and output."""

import ipaddress


def format_address(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def format_endpoint(packed: bytes, port: int) -> str:
    """Return "ip:port", with IPv6 addresses in brackets as in URLs."""
    if len(packed) == 16:
        return f"[{format_address(packed)}]:{port}"
    return f"{format_address(packed)}:{port}"
