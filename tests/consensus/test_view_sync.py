"""Views regroup: the highest TC is durable, re-sent, and handed to peers stuck below it.

The bug these pin down (weak_qc n=4 seed 1000181, and the 2-2 split on real
processes): two honest nodes rebuilt after a sync dropped back from view 19 to
18 (the TC that had moved them on was not on disk), the third honest node was
in 19 without that TC, and no view ever gathered 2f+1 timeouts again.
"""

from __future__ import annotations

from p2pcity.consensus import (
    Action,
    Broadcast,
    Core,
    PersistSafety,
    Send,
    Start,
    TimeoutCertReceived,
    TimeoutReceived,
    TimerFired,
)
from p2pcity.crypto.hashing import sha256
from p2pcity.crypto.keys import SigningKey
from p2pcity.types.consensus import SafetyState, Timeout, TimeoutCert
from tests.sim.builders import genesis_qc, keys, make_core, publics, tc_for, timeout

K = keys(4)
VALIDATORS = publics(K)


def started(index: int, **kwargs: object) -> Core:
    core = make_core(K[index], VALIDATORS, **kwargs)  # type: ignore[arg-type]
    core.handle(Start())
    return core


def messages(actions: list[Action], kind: type) -> list[tuple[str, object]]:
    """(how, message) of each message of ``kind``: "all" for a broadcast, else the receiver."""
    out: list[tuple[str, object]] = []
    for action in actions:
        if isinstance(action, Broadcast) and isinstance(action.message, kind):
            out.append(("all", action.message))
        elif isinstance(action, Send) and isinstance(action.message, kind):
            out.append((action.to.hex(), action.message))
    return out


def persisted(actions: list[Action]) -> SafetyState:
    states = [a.state for a in actions if isinstance(a, PersistSafety)]
    assert states, "nothing persisted"
    return states[-1]


def test_a_tc_is_durable_and_a_restart_comes_back_in_the_view_it_proved() -> None:
    core = started(0)
    tc = tc_for(18, K[1:], genesis_qc())
    state = persisted(core.handle(TimeoutCertReceived(tc)))
    assert core.view == 19 and state.high_tc == tc
    # Rebuilt from that record (a restart, or the rebuild after a catch-up sync): view 19,
    # not the view 1 its votes and timeouts alone prove.
    again = make_core(K[0], VALIDATORS, safety=state)
    assert again.view == 19
    # ...and the record itself round-trips through the store's encoding.
    assert SafetyState.decode(state.encode()) == state


def test_every_local_timeout_re_sends_the_tc_newer_than_the_high_qc() -> None:
    core = started(0)
    tc = tc_for(18, K[1:], genesis_qc())
    core.handle(TimeoutCertReceived(tc))
    for _ in range(3):  # the first expiry and the repeats
        actions = core.handle(TimerFired(19))
        assert ("all", tc) in messages(actions, TimeoutCert)
        sent = [m for how, m in messages(actions, Timeout) if how == "all"]
        assert [t.view for t in sent] == [19]  # type: ignore[attr-defined]


def test_a_restarted_node_re_sends_its_persisted_tc() -> None:
    tc = tc_for(18, K[1:], genesis_qc())
    state = SafetyState(0, 0, genesis_qc(), genesis_qc(), tc)
    core = started(0, safety=state)
    assert ("all", tc) in messages(core.handle(TimerFired(19)), TimeoutCert)


def test_a_tc_no_newer_than_the_high_qc_is_not_re_sent() -> None:
    core = started(0)
    core.handle(TimeoutCertReceived(tc_for(0, K[1:], genesis_qc())))
    assert core.view == 1
    assert not messages(core.handle(TimerFired(1)), TimeoutCert)  # the timeout's QC says as much


def test_a_peer_stuck_in_an_earlier_view_is_answered_directly_once_per_timer() -> None:
    core = started(0)
    tc = tc_for(18, K[1:], genesis_qc())
    core.handle(TimeoutCertReceived(tc))
    core.handle(TimerFired(19))  # we hold our own timeout for 19
    stale = timeout(K[2], 18, genesis_qc())
    answer = core.handle(TimeoutReceived(stale))
    to = VALIDATORS[2].hex()
    assert (to, tc) in messages(answer, TimeoutCert)
    own = [m for how, m in messages(answer, Timeout) if how == to]
    assert [(t.view, t.signer) for t in own] == [(19, VALIDATORS[0])]  # type: ignore[attr-defined]
    # A replay of that timeout (or the peer's repeat) before our timer moves costs nothing more.
    assert not messages(core.handle(TimeoutReceived(stale)), TimeoutCert | Timeout)
    assert not messages(core.handle(TimeoutReceived(timeout(K[2], 17, genesis_qc()))), Timeout)
    # After our next expiry the peer is answered again (the first answer may have been lost).
    core.handle(TimerFired(19))
    assert (to, tc) in messages(core.handle(TimeoutReceived(stale)), TimeoutCert)


def test_no_answer_to_outsiders_nor_when_we_moved_on_by_a_qc_alone() -> None:
    core = started(0)
    core.handle(TimeoutCertReceived(tc_for(18, K[1:], genesis_qc())))
    core.handle(TimerFired(19))
    outsider = SigningKey.from_seed(sha256(b"not a validator"))
    assert not core.handle(TimeoutReceived(timeout(outsider, 18, genesis_qc())))
    fresh = started(1)  # in view 1: nothing certifies a later view, nothing to hand on
    assert not messages(fresh.handle(TimeoutReceived(timeout(K[2], 0, genesis_qc()))), Timeout)


def test_an_observer_follows_views_but_signs_nothing() -> None:
    """A node whose key is not a validator's never signs a timeout or a vote (its own gossip
    validator refused them: "our own message was reject by our validator")."""
    observer = SigningKey.from_seed(sha256(b"observer"))
    core = make_core(observer, VALIDATORS)
    core.handle(Start())
    tc = tc_for(4, K[1:], genesis_qc())
    core.handle(TimeoutCertReceived(tc))
    assert core.view == 5
    actions = core.handle(TimerFired(5))
    assert not messages(actions, Timeout | TimeoutCert)
    assert not [a for a in actions if isinstance(a, Send | Broadcast)]
    assert core.safety.last_timeout_view == 0
    assert not messages(core.handle(TimeoutReceived(timeout(K[2], 3, genesis_qc()))), Timeout)
