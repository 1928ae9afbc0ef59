"""The emulation rules: which links a partition cuts, how shapings combine, what people type."""

from __future__ import annotations

import pytest

from p2pcity.netem.rules import (
    NetemError,
    Rules,
    Shaping,
    parse_duration_ms,
    parse_groups,
    parse_loss,
)


def test_healed_network_carries_every_link() -> None:
    rules = Rules(4)
    assert all(rules.allowed(i, j) for i in range(4) for j in range(4))


def test_minority_partition_cuts_only_links_across() -> None:
    rules = Rules(4).partition([[0, 1, 2], [3]])
    assert rules.allowed(0, 2) and rules.allowed(1, 0)
    assert not any(rules.allowed(3, j) or rules.allowed(j, 3) for j in range(3))


def test_bridge_node_sees_both_sides_and_the_sides_not_each_other() -> None:
    rules = Rules(5).partition([[0, 1, 2], [2, 3, 4]])
    assert rules.allowed(2, 0) and rules.allowed(2, 4)
    assert not rules.allowed(0, 4) and not rules.allowed(1, 3)


def test_isolate_and_unlisted_nodes_are_cut_off() -> None:
    iso = Rules(4).isolate(1)
    assert not any(iso.allowed(1, j) for j in (0, 2, 3)) and iso.allowed(0, 3)
    unlisted = Rules(4).partition([[0, 1, 2]])
    assert not unlisted.allowed(3, 0)


def test_heal_ends_partition_and_shaping_but_keeps_clock_offsets() -> None:
    rules = Rules(4).partition([[0], [1, 2, 3]]).shape_node(2, Shaping(40, 5, 0.01)).skew_clock(1, 30)
    healed = rules.heal()
    assert healed.groups is None and healed.shaping(2, 0).idle
    assert healed.clock_offset_s == {1: 30}
    assert healed.generation > rules.generation  # the relay must notice the change


def test_shapings_of_both_ends_and_the_link_add_up() -> None:
    rules = Rules(3).shape_node(0, Shaping(10, 1, 0.1)).shape_node(1, Shaping(20, 2, 0.1))
    rules = rules.shape_link(0, 1, Shaping(5))
    s = rules.shaping(0, 1)
    assert (s.delay_ms, s.jitter_ms) == (35, 3)
    assert s.loss == pytest.approx(0.19)
    assert rules.shaping(1, 0).delay_ms == 35  # a link shaping applies both ways
    assert rules.shaping(0, 2).delay_ms == 10


def test_rules_survive_json() -> None:
    rules = (
        Rules(4).partition([[0, 1], [1, 2, 3]]).shape_link(0, 3, Shaping(7, 1, 0.5)).skew_clock(3, -2.5)
    )
    assert Rules.from_json(rules.to_json()) == rules


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(NetemError, match="does not exist"):
        Rules(4).partition([[0, 4]])
    with pytest.raises(NetemError, match="does not exist"):
        parse_groups(["0,1", "9"], 4)
    with pytest.raises(NetemError, match="not a group"):
        parse_groups(["0,x"], 4)
    with pytest.raises(NetemError, match="partition"):
        parse_loss("100%")
    with pytest.raises(NetemError, match="not a duration"):
        parse_duration_ms("fast")
    with pytest.raises(NetemError, match="malformed"):
        Rules.from_json({"groups": []})


def test_what_people_type() -> None:
    assert parse_duration_ms("40ms") == 40 and parse_duration_ms("0.5s") == 500
    assert parse_duration_ms("250us") == 0.25 and parse_duration_ms("12") == 12
    assert parse_loss("1%") == pytest.approx(0.01) and parse_loss("0.2") == 0.2
    assert parse_groups(["0,1,2", "3"], 4) == [[0, 1, 2], [3]]


def test_wan_profile_gives_every_link_a_city_rtt_and_loss() -> None:
    from p2pcity.netem.profiles import wan  # noqa: PLC0415 - next to its only test

    rules = wan(Rules(16), seed=3)
    links = [(i, j) for i in range(16) for j in range(16) if i != j]
    for i, j in links:
        s = rules.shaping(i, j)
        assert 10 <= 2 * s.delay_ms <= 50 and 0.001 <= s.loss <= 0.01
        assert rules.shaping(j, i) == s  # symmetric
    assert len({rules.shaping(i, j).delay_ms for i, j in links}) > 50  # links differ
    assert wan(Rules(16), seed=3) == rules  # seeded
