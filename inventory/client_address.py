"""The address a request really comes from, for the login lock-out (django-axes) and the login throttle.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only as far as it was
written by our own reverse proxies (`SPD_TRUSTED_PROXIES`): from the right, each hop a trusted proxy
appended is skipped, and the first address not of a trusted proxy is the client. A request that did
not come through a trusted proxy is its socket's peer (`REMOTE_ADDR`), whatever its headers say —
otherwise a client could pick a new address for every guess and never be locked out.
"""
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or — behind trusted proxies — the hop before them."""
    remote = request.META.get("REMOTE_ADDR", "")
    networks = _networks(tuple(settings.SPD_TRUSTED_PROXIES))
    if not _trusted(remote, networks):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote  # a proxy of ours writes addresses; anything else was sent by the client
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else remote
