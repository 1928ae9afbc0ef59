"""The proxy: a validator deciding whether to re-encrypt, and doing it.

Pure given its inputs: a request, a committed state view, the validator's
identity (and an optional rng). No I/O, no clock: "expired" is judged at the
request's block time, which the ledger recorded; "revoked" at the committed
state the caller passes in, so an honest proxy refuses from the revoke's
height on.

The ledger already judged the grant when it executed the ``access.request``
and counted the use then; the proxy's job is to serve exactly the requests
the ledger granted, and only to the grantee. A proxy never sees the data key
or the data: it holds one key fragment and returns one capsule fragment,
which is useless without the grantee's secret key and ``threshold - 1``
others.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

from p2pcity.chain import queries
from p2pcity.chain.entries import AccessEntry, DatasetEntry, GrantEntry
from p2pcity.chain.state import StateView, access_key
from p2pcity.codec import DecodeError, decode, encode
from p2pcity.crypto import umbral
from p2pcity.crypto.keys import Identity, verify
from p2pcity.sharing.datakey import SharingError, read_capsule
from p2pcity.sharing.messages import ReencryptRequest, ReencryptResponse, Refusal, request_message

MAX_REQUEST_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Refused:
    code: Refusal
    reason: str


@dataclass(frozen=True, slots=True)
class Work:
    """A request the committed state allows: what is needed to re-encrypt it."""

    grant: GrantEntry
    dataset: DatasetEntry
    access: AccessEntry
    sealed_kfrag: bytes | None  # this proxy's sealed fragment; None when checked for no proxy


# The ledger's reasons for a refused access.request (handlers.grant_refusal), as codes.
_LEDGER_REASONS = (
    ("wrong grantee", Refusal.WRONG_GRANTEE),
    ("grant revoked", Refusal.REVOKED),
    ("grant expired", Refusal.EXPIRED),
    ("grant used up", Refusal.USED_UP),
)


def check_request(
    request: ReencryptRequest, state: StateView, chain_id: str, proxy: bytes | None
) -> Work | Refused:
    """Whether the committed ``state`` allows re-encrypting ``request`` (for ``proxy``, if given)."""
    entry = queries.grant(state, request.grant_id)
    # Rule: the grant must exist in the committed state.
    if entry is None:
        return Refused(Refusal.NO_GRANT, f"no grant {request.grant_id.hex()}")
    grant = entry.grant
    # Rule: only the grantee may ask, for this chain, this grant and this request.
    message = request_message(chain_id, request.grant_id, request.request_tx)
    if not verify(grant.grantee, message, request.signature):
        return Refused(Refusal.BAD_SIGNATURE, "request is not signed by the grant's grantee")
    sealed = None
    if proxy is not None:
        # Rule: a proxy serves only grants that gave it a key fragment.
        mine = [k.sealed for k in grant.kfrags if k.validator == proxy]
        if not mine:
            return Refused(Refusal.NOT_A_PROXY, "this validator holds no key fragment of the grant")
        sealed = mine[0]
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
    # Rule: the request was made by the grantee herself.
    if access.grantee != grant.grantee:
        return Refused(Refusal.WRONG_GRANTEE, "the access request was made by someone else")
    # Rule: the ledger granted it (not expired, revoked or used up at its block); its use is counted.
    if not (receipt.ok and access.granted):
        reason = access.reason or receipt.error
        code = next((c for text, c in _LEDGER_REASONS if reason.startswith(text)), Refusal.REQUEST_FAILED)
        return Refused(code, f"the ledger refused the access request: {reason}")
    # Rule: expiry is judged at the request's block time (the ledger did; checked again, cheaply).
    if grant.expires_at_ms and access.timestamp_ms >= grant.expires_at_ms:
        return Refused(Refusal.EXPIRED, "grant had expired when the request was committed")
    dataset = queries.dataset(state, grant.dataset_id)
    if dataset is None:
        return Refused(Refusal.BAD_DATASET, "the grant's dataset is not in the state")
    return Work(entry, dataset, access, sealed)


class Proxy:
    """One validator's re-encryption service, with a cache of verified key fragments."""

    def __init__(
        self,
        identity: Identity,
        chain_id: str,
        *,
        cache_size: int = 4096,
        rng: umbral.RandomBytes | None = None,
    ) -> None:
        self.account = identity.signer.public_key
        self.chain_id = chain_id
        self._secret = umbral.SecretKey.from_bytes(identity.pre_secret)
        self._rng = rng
        # grant id -> verified fragment, or why it is unusable (a bad fragment stays bad).
        self._kfrags: OrderedDict[bytes, umbral.VerifiedKeyFrag | str] = OrderedDict()
        self._cache_size = cache_size
        self.served = 0
        self.refused: Counter[str] = Counter()

    def answer(self, request: ReencryptRequest, state: StateView) -> ReencryptResponse:
        verdict = check_request(request, state, self.chain_id, self.account)
        if isinstance(verdict, Refused):
            return self._refuse(verdict.code, verdict.reason)
        try:
            opened = read_capsule(verdict.dataset.dataset)
        except SharingError as exc:
            return self._refuse(Refusal.BAD_DATASET, str(exc))
        kfrag = self._kfrag(verdict, opened.delegating_key)
        if isinstance(kfrag, str):
            return self._refuse(Refusal.BAD_KFRAG, kfrag)
        cfrag = umbral.reencrypt(opened.capsule, kfrag, self._rng)
        self.served += 1
        return ReencryptResponse(self.account, cfrag.to_bytes(), "", "")

    def answer_bytes(self, data: bytes, state: StateView) -> bytes:
        """The wire form: request bytes in, response bytes out; never raises on bad input."""
        try:
            request = decode(ReencryptRequest, data, max_size=MAX_REQUEST_SIZE)
        except DecodeError as exc:
            return encode(self._refuse(Refusal.MALFORMED, str(exc)))
        return encode(self.answer(request, state))

    def _refuse(self, code: Refusal, reason: str) -> ReencryptResponse:
        self.refused[code.value] += 1
        return ReencryptResponse(self.account, b"", code.value, reason)

    def _kfrag(self, work: Work, delegating: umbral.PublicKey) -> umbral.VerifiedKeyFrag | str:
        grant_id = work.grant.grant_id
        cached = self._kfrags.get(grant_id)
        if cached is not None:
            self._kfrags.move_to_end(grant_id)
            return cached
        assert work.sealed_kfrag is not None
        grant = work.grant.grant
        found: umbral.VerifiedKeyFrag | str
        try:
            kfrag = umbral.KeyFrag.from_bytes(umbral.decrypt_from(self._secret, work.sealed_kfrag))
            # Made by this grant's signer, for this owner's dataset key and this grantee only.
            found = kfrag.verify(
                umbral.PublicKey.from_bytes(grant.verifying_key),
                delegating,
                umbral.PublicKey.from_bytes(grant.grantee_pre_key),
            )
        except umbral.UmbralError as exc:
            found = f"key fragment unusable: {exc}"
        self._kfrags[grant_id] = found
        if len(self._kfrags) > self._cache_size:
            self._kfrags.popitem(last=False)
        return found

    def metrics(self) -> dict[str, int]:
        """Counters for the node's /metrics: served, and refused per code."""
        return {"served": self.served, **{f"refused_{k}": v for k, v in sorted(self.refused.items())}}
