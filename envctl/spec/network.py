"""Carving tier subnets out of the VPC CIDR: in declared order, each block aligned to its prefix."""
from __future__ import annotations

import ipaddress
import string

ZONE_LETTERS = string.ascii_lowercase


def zone_names(region: str, zones: int) -> list[str]:
    """The first N availability zones of a region, by letter: eu-north-1a, eu-north-1b, …"""
    return [f"{region}{ZONE_LETTERS[i]}" for i in range(zones)]


def carve(vpc_cidr: str, zones: int, tiers: dict) -> dict[tuple[str, int], str]:
    """{(tier, zone index): subnet CIDR}. Explicit `cidrs` are kept; `prefix` tiers are carved.

    Blocks are taken in declared order (tier by tier, zone by zone), each at the next address
    aligned to its prefix, so adding a tier at the end never moves an existing subnet.
    Raises ValueError naming the tier when a block does not fit or two blocks overlap.
    """
    vpc = ipaddress.IPv4Network(vpc_cidr)
    taken: list[tuple[ipaddress.IPv4Network, str]] = []
    out: dict[tuple[str, int], str] = {}
    for tier_name, tier in tiers.items():
        if tier.cidrs is not None:
            if len(tier.cidrs) != zones:
                raise ValueError(f"tier {tier_name!r} lists {len(tier.cidrs)} CIDRs for {zones} zones")
            for z, text in enumerate(tier.cidrs):
                net = ipaddress.IPv4Network(text)
                if not net.subnet_of(vpc):
                    raise ValueError(f"tier {tier_name!r}: {net} is not inside the VPC's {vpc}")
                _claim(net, f"{tier_name}[{z}]", taken)
                out[(tier_name, z)] = str(net)
    cursor = int(vpc.network_address)
    for tier_name, tier in tiers.items():
        if tier.prefix is None:
            continue
        if tier.prefix < vpc.prefixlen:
            raise ValueError(f"tier {tier_name!r}: a /{tier.prefix} subnet is larger than the VPC's /{vpc.prefixlen}")
        size = 2 ** (32 - tier.prefix)
        for z in range(zones):
            cursor = -(-cursor // size) * size                     # align up
            net = _free_block(cursor, tier.prefix, taken)
            if net is None or not net.subnet_of(vpc):
                raise ValueError(f"tiers do not fit in the VPC's {vpc}: no room for {tier_name!r} zone {z + 1} "
                                 f"(/{tier.prefix}); use a larger VPC CIDR or smaller prefixes")
            _claim(net, f"{tier_name}[{z}]", taken)
            out[(tier_name, z)] = str(net)
            cursor = int(net.broadcast_address) + 1
    return out


def _free_block(cursor: int, prefix: int, taken) -> ipaddress.IPv4Network | None:
    size = 2 ** (32 - prefix)
    while cursor < 2 ** 32:
        net = ipaddress.IPv4Network((cursor, prefix))
        clash = next((t for t, _ in taken if t.overlaps(net)), None)
        if clash is None:
            return net
        cursor = -(-(int(clash.broadcast_address) + 1) // size) * size
    return None


def _claim(net, label: str, taken) -> None:
    for other, other_label in taken:
        if other.overlaps(net):
            raise ValueError(f"{label} {net} overlaps {other_label} {other}")
    taken.append((net, label))
