"""The end customer's address, as the redemption lockout counts it.

IPv4 addresses count one by one. An IPv6 customer usually holds a whole /64 (any
address in it is theirs to use), so the lockout counts the /64: otherwise a guesser
would get a fresh allowance with every address of their network.
"""

from __future__ import annotations

import ipaddress


def lockout_client(address: str) -> str:
    ip = ipaddress.ip_address(address.strip())
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
