"""Carving tier subnets out of the VPC CIDR: declared order, aligned blocks, stable when tiers are added."""
from __future__ import annotations

import pytest

from envctl.spec.models import Tier
from envctl.spec.network import carve, zone_names


def tiers(**sizes) -> dict[str, Tier]:
    """tiers(public=24, private=20) or tiers(app=["10.0.0.0/24", …]): in the order given."""
    return {name: Tier(cidrs=size) if isinstance(size, list) else Tier(prefix=size) for name, size in sizes.items()}


def test_tiers_are_carved_in_declared_order_zone_by_zone():
    assert carve("10.20.0.0/16", 2, tiers(public=24, private=20, data=24)) == {
        ("public", 0): "10.20.0.0/24",
        ("public", 1): "10.20.1.0/24",
        ("private", 0): "10.20.16.0/20",       # aligned up to the next /20 boundary
        ("private", 1): "10.20.32.0/20",
        ("data", 0): "10.20.48.0/24",
        ("data", 1): "10.20.49.0/24",
    }


def test_declared_order_decides_not_size():
    assert carve("10.0.0.0/16", 2, tiers(private=20, public=24)) == {
        ("private", 0): "10.0.0.0/20",
        ("private", 1): "10.0.16.0/20",
        ("public", 0): "10.0.32.0/24",
        ("public", 1): "10.0.33.0/24",
    }


@pytest.mark.parametrize("zones", [1, 2, 3, 6])
def test_every_block_is_aligned_to_its_prefix_and_inside_the_vpc(zones):
    import ipaddress

    vpc = ipaddress.IPv4Network("10.0.0.0/16")
    out = carve(str(vpc), zones, tiers(a=26, b=22, c=28, d=24))

    nets = [ipaddress.IPv4Network(c) for c in out.values()]             # strict: raises when not aligned
    assert len(out) == 4 * zones
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def test_adding_a_tier_at_the_end_never_moves_existing_subnets():
    before = carve("10.20.0.0/16", 2, tiers(public=24, private=20))
    after = carve("10.20.0.0/16", 2, tiers(public=24, private=20, data=24, cache=27))

    assert {k: v for k, v in after.items() if k in before} == before
    assert after[("data", 0)] == "10.20.48.0/24"


def test_adding_a_zone_moves_the_next_tier_only_when_its_alignment_leaves_no_room():
    # A tier's zones are adjacent: a new zone takes the place right after them. The reference
    # docs say so, and advise explicit cidrs (or spare alignment) for zones you may add later.
    two = carve("10.0.0.0/16", 2, tiers(public=24, private=20))
    three = carve("10.0.0.0/16", 3, tiers(public=24, private=20))
    assert {k: v for k, v in three.items() if k in two} == two          # /20 alignment had room
    assert three[("public", 2)] == "10.0.2.0/24"

    two = carve("10.0.0.0/16", 2, tiers(public=24, private=24))
    three = carve("10.0.0.0/16", 3, tiers(public=24, private=24))
    assert two[("private", 0)] == "10.0.2.0/24" and three[("private", 0)] == "10.0.3.0/24"


def test_explicit_cidrs_are_kept_and_carving_goes_around_them():
    out = carve("10.0.0.0/16", 2, tiers(public=24, legacy=["10.0.0.0/24", "10.0.5.0/24"]))

    assert out[("legacy", 0)] == "10.0.0.0/24" and out[("legacy", 1)] == "10.0.5.0/24"
    assert out[("public", 0)] == "10.0.1.0/24"
    assert out[("public", 1)] == "10.0.2.0/24"


def test_a_carved_block_skips_to_the_next_aligned_free_place():
    out = carve("10.0.0.0/16", 1, tiers(legacy=["10.0.0.128/25"], big=24, small=25))

    assert out[("big", 0)] == "10.0.1.0/24"        # 10.0.0.0/24 would overlap the explicit /25
    assert out[("small", 0)] == "10.0.2.0/25"      # carving goes on after the last block, not into holes


@pytest.mark.parametrize(("cidr", "zones", "spec", "message"), [
    ("10.0.0.0/16", 2, dict(a=["10.0.0.0/24", "10.0.1.0/24"], b=["10.0.1.0/24", "10.0.2.0/24"]),
     "b[0] 10.0.1.0/24 overlaps a[1] 10.0.1.0/24"),
    ("10.0.0.0/16", 2, dict(a=["10.0.0.0/24", "10.0.0.0/25"]), "a[1] 10.0.0.0/25 overlaps a[0] 10.0.0.0/24"),
    ("10.0.0.0/24", 2, dict(public=16), "tier 'public': a /16 subnet is larger than the VPC's /24"),
    ("10.0.0.0/24", 2, dict(public=25, private=26),
     "tiers do not fit in the VPC's 10.0.0.0/24: no room for 'private' zone 1 (/26)"),
    ("10.0.0.0/20", 3, dict(big=22, more=22), "no room for 'more' zone 2 (/22)"),
    ("10.0.0.0/16", 2, dict(a=["10.0.0.0/24"]), "tier 'a' lists 1 CIDRs for 2 zones"),
    ("10.0.0.0/16", 1, dict(a=["192.168.0.0/24"]), "tier 'a': 192.168.0.0/24 is not inside the VPC's 10.0.0.0/16"),
])
def test_carving_errors_name_the_tier(cidr, zones, spec, message):
    with pytest.raises(ValueError) as e:
        carve(cidr, zones, tiers(**spec))
    assert message in str(e.value)


def test_a_vpc_filled_exactly_is_fine():
    out = carve("10.0.0.0/24", 2, tiers(a=26, b=26))

    assert sorted(out.values()) == ["10.0.0.0/26", "10.0.0.128/26", "10.0.0.192/26", "10.0.0.64/26"]


def test_zones_are_the_first_letters_of_the_region():
    assert zone_names("eu-north-1", 3) == ["eu-north-1a", "eu-north-1b", "eu-north-1c"]
