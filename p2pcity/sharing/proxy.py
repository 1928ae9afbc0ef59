"""The proxy: a validator deciding whether to re-encrypt, and doing it.

Pure given its inputs: a request, a committed state view, the block time of
that state (``now_ms``), the validator's identity, a log of the requests it
served (an optional rng). No I/O, no clock: the ledger judged the request at
its block time; "revoked", "expired" and "window closed" are judged again at
the committed state and block time the caller passes in, so an honest proxy
refuses from the revoke's height on, from the expiry on, and once the window
is over, even for a request that was in time.

The ledger already judged the grant when it executed the ``access.request``
(with :func:`p2pcity.chain.access.grant_refusal`) and counted the use then;
the proxy serves exactly the requests the ledger granted, re-judged with
the same function, once each, and only to the grantee. It opens its key
fragment only with the binding recomputed from the committed grant. A proxy
never sees the data key or the data: it holds one key fragment and returns
one capsule fragment, which is useless without the grantee's secret key and
``threshold - 1`` others.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from typing import Protocol

from p2pcity.chain import queries
from p2pcity.chain.access import SERVE_WINDOW_MS, Fragments, Refusal, fragments_of, grant_refusal
from p2pcity.chain.entries import AccessEntry, DatasetEntry, GrantEntry
from p2pcity.chain.state import StateView, access_key
from p2pcity.codec import DecodeError, decode, encode
from p2pcity.crypto import umbral
from p2pcity.crypto.keys import Identity, verify
from p2pcity.sharing.datakey import SharingError, read_capsule
from p2pcity.sharing.grants import kfrag_binding
from p2pcity.sharing.messages import ReencryptRequest, ReencryptResponse, request_message

MAX_REQUEST_SIZE = 1024


class ServedLog(Protocol):
    """The requests a proxy has served; the node keeps it on disk, so a restart does not
    make a request servable again."""

    def served(self, request_tx: bytes) -> bool: ...

    def mark(self, request_tx: bytes) -> None: ...


class MemoryServedLog:
    def __init__(self) -> None:
        self.requests: set[bytes] = set()

    def served(self, request_tx: bytes) -> bool:
        return request_tx in self.requests

    def mark(self, request_tx: bytes) -> None:
        self.requests.add(request_tx)


@dataclass(frozen=True, slots=True)
class Refused:
    code: Refusal
    reason: str


@dataclass(frozen=True, slots=True)
class Work:
    """A request the committed state allows: what is needed to re-encrypt it."""

    grant: GrantEntry
    fragments: Fragments  # the grant's own or its latest regrant's: what the proxies serve from
    dataset: DatasetEntry
    access: AccessEntry
    sealed_kfrag: bytes | None  # this proxy's sealed fragment; None when checked for no proxy
    pre_key: bytes | None  # the PRE key the grant says that fragment is sealed to


def _ledger_code(reason: str) -> Refusal:
    try:
        return Refusal(reason)
    except ValueError:
        return Refusal.REQUEST_FAILED


def check_request(
    request: ReencryptRequest, state: StateView, chain_id: str, proxy: bytes | None, now_ms: int
) -> Work | Refused:
    """Whether the committed ``state`` at block time ``now_ms`` allows re-encrypting ``request``
    (for ``proxy``, if given)."""
    entry = queries.grant(state, request.grant_id)
    # Rule: the grant must exist in the committed state.
    if entry is None:
        return Refused(Refusal.NO_GRANT, f"no grant {request.grant_id.hex()}")
    grant = entry.grant
    # Rule: only the grantee may ask, for this chain, this grant and this request.
    message = request_message(chain_id, request.grant_id, request.request_tx)
    if not verify(grant.grantee, message, request.signature):
        return Refused(Refusal.BAD_SIGNATURE, "request is not signed by the grant's grantee for this request")
    fragments = fragments_of(entry, queries.fragments(state, request.grant_id))
    sealed = pre_key = None
    if proxy is not None:
        vset = queries.validator_set(state)
        mine = [k for k in fragments.kfrags if k.validator == proxy]
        held = mine or [k for k in grant.kfrags if k.validator == proxy]
        # Rule: only a current validator serves: a removed one's fragments belong to an earlier
        # set, whose trust the chain no longer vouches for.
        if held and proxy not in vset.validators:
            return Refused(
                Refusal.RETIRED,
                f"this node is no longer a validator (set {vset.version}): it serves no grant; "
                "the grant's owner can regrant it to the current validators",
            )
        # Rule: a proxy serves only grants that gave it a key fragment (the latest regrant's, if any).
        if not mine or proxy not in vset.validators:
            return Refused(Refusal.NOT_A_PROXY, "this validator holds no key fragment of the grant")
        sealed, pre_key = mine[0].sealed, mine[0].pre_key
    # Rule: a revoked grant is refused from the revoke's committed height on.
    if entry.revoked_height:
        return Refused(Refusal.REVOKED, f"grant revoked at height {entry.revoked_height}")
    receipt = queries.receipt(state, request.request_tx)
    # Rule: the access.request must be committed: it is the audit record of this access.
    if receipt is None:
        return Refused(Refusal.NOT_COMMITTED, "the access request is not committed (yet)")
    raw = state.state_get(access_key(grant.dataset_id, receipt.height, receipt.index))
    access = decode(AccessEntry, raw) if raw is not None else None
    # Rule: the committed transaction must be an access request under this very grant.
    if access is None or access.tx_hash != request.request_tx or access.grant_id != request.grant_id:
        detail = f": {receipt.error}" if receipt.error else ""
        return Refused(Refusal.REQUEST_FAILED, f"not an access request under this grant{detail}")
    # Rule: the ledger granted it; its refusal code is the proxy's.
    if not (receipt.ok and access.granted):
        return Refused(_ledger_code(access.reason), f"the ledger refused the access request: {receipt.error}")
    # Rule: the grant still allows it now (not revoked, not expired since), by the ledger's own
    # rule; the ledger judged it at the request's block time and counted the use then.
    code = grant_refusal(entry, access.grantee, access.purpose, now_ms, counted=True)
    if code is not None:
        return Refused(code, f"the grant does not allow this request: {code.value}")
    # Rule: one use, one window: a committed request is served only shortly after its commit.
    if now_ms - access.timestamp_ms > SERVE_WINDOW_MS:
        return Refused(
            Refusal.WINDOW_CLOSED,
            f"the request was committed {(now_ms - access.timestamp_ms) // 1000} s ago; "
            f"it is served for {SERVE_WINDOW_MS // 1000} s: make a new request",
        )
    dataset = queries.dataset(state, grant.dataset_id)
    if dataset is None:
        return Refused(Refusal.BAD_DATASET, "the grant's dataset is not in the state")
    return Work(entry, fragments, dataset, access, sealed, pre_key)


class Proxy:
    """One validator's re-encryption service, with a cache of verified key fragments."""

    def __init__(
        self,
        identity: Identity,
        chain_id: str,
        *,
        served: ServedLog | None = None,
        cache_size: int = 4096,
        rng: umbral.RandomBytes | None = None,
    ) -> None:
        self.account = identity.signer.public_key
        self.pre_key = identity.public.pre_key
        self.chain_id = chain_id
        self._secret = umbral.SecretKey.from_bytes(identity.pre_secret)
        self._served = served if served is not None else MemoryServedLog()
        self._rng = rng
        # (grant id, regrant set version) -> verified fragment, or why it is unusable (a bad
        # fragment stays bad; a regrant's is another fragment).
        self._kfrags: OrderedDict[tuple[bytes, int | None], umbral.VerifiedKeyFrag | str] = OrderedDict()
        self._cache_size = cache_size
        self.served = 0
        self.refused: Counter[str] = Counter()

    def answer(self, request: ReencryptRequest, state: StateView, now_ms: int) -> ReencryptResponse:
        verdict = check_request(request, state, self.chain_id, self.account, now_ms)
        if isinstance(verdict, Refused):
            return self._refuse(verdict.code, verdict.reason)
        # Rule: each committed request is re-encrypted once per proxy (one use, one answer).
        if self._served.served(request.request_tx):
            return self._refuse(
                Refusal.ALREADY_SERVED, "this proxy already served this request: make a new one"
            )
        try:
            opened = read_capsule(verdict.dataset.dataset)
        except SharingError as exc:
            return self._refuse(Refusal.BAD_DATASET, str(exc))
        kfrag = self._kfrag(verdict, opened.delegating_key)
        if isinstance(kfrag, str):
            return self._refuse(Refusal.BAD_KFRAG, kfrag)
        cfrag = umbral.reencrypt(opened.capsule, kfrag, self._rng)
        self._served.mark(request.request_tx)  # before the fragment leaves: a crash cannot re-serve
        self.served += 1
        return ReencryptResponse(self.account, cfrag.to_bytes(), "", "")

    def answer_bytes(self, data: bytes, state: StateView, now_ms: int) -> bytes:
        """The wire form: request bytes in, response bytes out; never raises on bad input."""
        try:
            request = decode(ReencryptRequest, data, max_size=MAX_REQUEST_SIZE)
        except DecodeError as exc:
            return encode(self._refuse(Refusal.MALFORMED, str(exc)))
        return encode(self.answer(request, state, now_ms))

    def _refuse(self, code: Refusal, reason: str) -> ReencryptResponse:
        self.refused[code.value] += 1
        return ReencryptResponse(self.account, b"", code.value, reason)

    def _kfrag(self, work: Work, delegating: umbral.PublicKey) -> umbral.VerifiedKeyFrag | str:
        slot = (work.grant.grant_id, work.fragments.set_version)
        cached = self._kfrags.get(slot)
        if cached is not None:
            self._kfrags.move_to_end(slot)
            return cached
        assert work.sealed_kfrag is not None
        grant = replace(work.grant.grant, threshold=work.fragments.threshold)
        found: umbral.VerifiedKeyFrag | str
        if work.pre_key != self.pre_key:
            found = "key fragment is sealed to another PRE key than this validator's (rotated since?)"
        else:
            binding = kfrag_binding(
                self.chain_id, grant, self.account, self.pre_key, work.fragments.set_version
            )
            try:
                # Opens only with the binding of this very grant: a fragment lifted from another fails.
                plain = umbral.decrypt_from(self._secret, work.sealed_kfrag, binding)
                # Made by this grant's signer, for this owner's dataset key and this grantee only.
                found = umbral.KeyFrag.from_bytes(plain).verify(
                    umbral.PublicKey.from_bytes(grant.verifying_key),
                    delegating,
                    umbral.PublicKey.from_bytes(grant.grantee_pre_key),
                )
            except umbral.UmbralError as exc:
                found = f"key fragment unusable (not sealed for this grant?): {exc}"
        self._kfrags[slot] = found
        if len(self._kfrags) > self._cache_size:
            self._kfrags.popitem(last=False)
        return found

    def metrics(self) -> dict[str, int]:
        """Counters for the node's /metrics: served, and refused per code."""
        return {"served": self.served, **{f"refused_{k}": v for k, v in sorted(self.refused.items())}}
