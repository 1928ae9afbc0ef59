"""The one definition of when a grant allows an access, and the refusal codes.

The ledger judges each ``access.request`` with :func:`grant_refusal` and
records the code in the audit entry; a proxy re-judges a committed request
with the same function (``counted=True``: the ledger already counted its
use) and maps nothing from English text; the client uses it to pick a live
grant before spending a transaction. Codes are stable strings: clients,
metrics and the audit log show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from p2pcity.chain.entries import DatasetEntry, FragmentsEntry, GrantEntry
from p2pcity.codec import DecodeError, decode, encode
from p2pcity.crypto import umbral
from p2pcity.types.tx import (
    DataCapsule,
    DatasetRegister,
    SealedKeyFrag,
    Transaction,
    derived_id,
    possession_message,
)

SERVE_WINDOW_MS = 10 * 60 * 1000
"""How long after its commit (in block time) a granted request may be served.

Block time, not blocks: expiry is judged in block time too, and a block
count would mean anything from ~1 minute on a busy chain (100 ms blocks) to
~10 on an idle one (1 s empty blocks). A proxy's clock is the timestamp of
its latest committed block, which honest validators check against their own
clocks before voting; while the chain is stalled that clock stands still, so
the window closes by chain time, not wall time."""


def min_threshold(proxies: int) -> int:
    """f + 1 for n = 3f + 1: the fewest proxies a grant may need, and the default.

    At least one honest proxy takes part in every re-encryption, so the f
    faulty ones can neither serve a revoked, expired or used-up grant alone
    nor block an honest one (n - f >= f + 1 answer)."""
    return (proxies - 1) // 3 + 1


class Refusal(StrEnum):
    """Why an access is refused (by the ledger) or not served (by a proxy)."""

    MALFORMED = "malformed"  # the request does not decode
    NO_GRANT = "no-grant"  # no such grant in the committed state
    BAD_SIGNATURE = "bad-signature"  # not signed by the grant's grantee for this chain and request
    NOT_A_PROXY = "not-a-proxy"  # the grant holds no key fragment for this validator
    RETIRED = "retired"  # this node is no longer a validator: its fragments belong to an earlier set
    TOO_FEW_PROXIES = "too-few-proxies"  # fewer of the grant's proxies are validators than its threshold
    REVOKED = "revoked"  # the grant is revoked as of the committed state
    NOT_COMMITTED = "not-committed"  # the access.request is not (yet) in a committed block
    REQUEST_FAILED = "request-failed"  # committed, but not an access request under this grant
    WRONG_GRANTEE = "wrong-grantee"  # the request was made by someone other than the grantee
    EXPIRED = "expired"  # the grant had expired at the request's block time
    USED_UP = "used-up"  # the request came after the grant's last allowed use
    WRONG_PURPOSE = "wrong-purpose"  # the request states another purpose than the grant's
    WINDOW_CLOSED = "window-closed"  # the request was committed more than SERVE_WINDOW_MS ago
    ALREADY_SERVED = "already-served"  # this proxy served this request once already
    BAD_KFRAG = "bad-kfrag"  # this proxy's key fragment does not open (with the grant's binding) or verify
    BAD_DATASET = "bad-dataset"  # the dataset's capsule is malformed


def grant_refusal(
    entry: GrantEntry, grantee: bytes, purpose: str, at_ms: int, *, counted: bool = False
) -> Refusal | None:
    """Why ``entry`` does not allow ``grantee`` an access for ``purpose`` at block time ``at_ms``.

    ``counted``: the access is one the ledger already counted (a proxy judging
    a committed request), so the use limit was checked then and is not again.
    """
    grant = entry.grant
    # Rule: only the grantee named in the grant.
    if grant.grantee != grantee:
        return Refusal.WRONG_GRANTEE
    # Rule: a revoked grant allows nothing from the revoke's height on.
    if entry.revoked_height:
        return Refusal.REVOKED
    # Rule: an expiry is exclusive: at expires_at_ms the grant is over.
    if grant.expires_at_ms and at_ms >= grant.expires_at_ms:
        return Refusal.EXPIRED
    # Rule: a grant that names a purpose allows accesses for exactly that purpose.
    if grant.purpose and purpose != grant.purpose:
        return Refusal.WRONG_PURPOSE
    # Rule: at most max_uses accesses are counted.
    if not counted and grant.max_uses and entry.uses >= grant.max_uses:
        return Refusal.USED_UP
    return None


def describe(code: Refusal, entry: GrantEntry) -> str:
    """A one-line reason for people (receipts, CLI); clients match the code, never this text."""
    grant = entry.grant
    texts = {
        Refusal.WRONG_GRANTEE: "the grant is for another grantee",
        Refusal.REVOKED: f"grant revoked at height {entry.revoked_height}",
        Refusal.EXPIRED: f"grant expired at {grant.expires_at_ms} ms",
        Refusal.WRONG_PURPOSE: f"the grant is for purpose {grant.purpose!r} only",
        Refusal.USED_UP: f"grant used up ({entry.uses} of {grant.max_uses} uses)",
    }
    return f"{code.value}: {texts.get(code, code.value)}"


def possession_problem(chain_id: str, owner: bytes, dataset: DatasetRegister) -> str | None:
    """Why ``dataset`` is not proven to be ``owner``'s on ``chain_id``, or None.

    The ledger refuses a ``dataset.register`` for which this is not None; a
    grantee checks the entry a node shows her the same way, so a node cannot
    swap in another capsule, data key or ciphertext hash for the owner's.
    """
    try:
        capsule = decode(DataCapsule, dataset.capsule, max_size=512)
        umbral.Capsule.from_bytes_simple(capsule.capsule)
        delegating = umbral.PublicKey.from_bytes(capsule.delegating_key)
        signer = umbral.PublicKey.from_bytes(dataset.verifying_key)
        possession = umbral.Signature.from_bytes(dataset.possession)
        signer_proof = umbral.Signature.from_bytes(dataset.signer_proof)
    except (DecodeError, umbral.UmbralError) as exc:
        return f"malformed capsule, key or proof: {exc}"
    message = possession_message(chain_id, owner, dataset)
    if not possession.verify(delegating, message):
        return "the delegating key's proof of possession does not verify"
    if not signer_proof.verify(signer, message):
        return "the verifying key's proof of possession does not verify"
    return None


@dataclass(frozen=True, slots=True)
class Fragments:
    """The key fragments a grant is served from now: its own, or its latest regrant's."""

    threshold: int
    kfrags: tuple[SealedKeyFrag, ...]
    set_version: int | None  # the regrant's set version; None: the grant's own fragments
    height: int  # the block that committed them


def fragments_of(entry: GrantEntry, refreshed: FragmentsEntry | None) -> Fragments:
    """The one answer to "which fragments does this grant use": a regrant replaces the grant's own."""
    if refreshed is not None and refreshed.grant_id == entry.grant_id:
        r = refreshed.regrant
        return Fragments(r.threshold, r.kfrags, r.set_version, refreshed.height)
    return Fragments(entry.grant.threshold, entry.grant.kfrags, None, entry.height)


@dataclass(frozen=True, slots=True)
class ProxyHealth:
    """How many of a grant's proxies can still serve: validators now, with the PRE key their
    fragment is sealed to. A removed validator refuses (``retired``); a rotated PRE key cannot
    open the old fragment."""

    live: int
    total: int
    threshold: int

    @property
    def openable(self) -> bool:
        return self.live >= self.threshold

    @property
    def at_risk(self) -> bool:
        """At or below the threshold: one more lost proxy (or one refusing) and it does not open."""
        return self.live <= self.threshold

    def describe(self) -> str:
        text = f"{self.live} of the grant's {self.total} proxies are still validators"
        text += f", {self.threshold} needed"
        if not self.openable:
            return f"{text}: it cannot be opened until the owner regrants it (p2pcity data regrant)"
        if self.at_risk:
            return f"{text}: at the threshold; the owner should regrant it (p2pcity data regrant)"
        return text


def proxy_health(fragments: Fragments, validators: Mapping[bytes, bytes]) -> ProxyHealth:
    """``validators``: the current validators' accounts and registered PRE keys."""
    live = sum(1 for k in fragments.kfrags if validators.get(k.validator) == k.pre_key)
    return ProxyHealth(live, len(fragments.kfrags), fragments.threshold)


def dataset_id_of(tx: Transaction) -> bytes:
    return derived_id(b"p2pcity/dataset", tx)


def grant_id_of(tx: Transaction) -> bytes:
    return derived_id(b"p2pcity/grant", tx)


def _creating_tx(
    chain_id: str, owner: bytes, nonce: int, kind: str, body: object, signature: bytes
) -> Transaction:
    return Transaction(chain_id, owner, nonce, kind, encode(body), signature)


def dataset_entry_problem(chain_id: str, dataset_id: bytes, entry: DatasetEntry) -> str | None:
    """Why ``entry`` is not the dataset ``dataset_id`` its owner registered on ``chain_id``, or None.

    The id commits to the owner's account and nonce, and the owner signed the
    body: a node can neither alter an entry nor fabricate one for an id.
    """
    tx = _creating_tx(chain_id, entry.owner, entry.nonce, "dataset.register", entry.dataset, entry.signature)
    if entry.dataset_id != dataset_id or dataset_id_of(tx) != dataset_id:
        return "the entry is not the dataset of this id"
    if not tx.signature_ok():
        return "the owner's signature over the dataset does not verify"
    return possession_problem(chain_id, entry.owner, entry.dataset)


def grant_entry_problem(chain_id: str, grant_id: bytes, entry: GrantEntry) -> str | None:
    """Why ``entry``'s terms are not those the owner granted as ``grant_id``, or None.

    Its revocation and use count are state, not signed: a node can still lie
    about those (issue 13's proofs), which only makes honest proxies refuse.
    """
    tx = _creating_tx(chain_id, entry.owner, entry.nonce, "access.grant", entry.grant, entry.signature)
    if entry.grant_id != grant_id or grant_id_of(tx) != grant_id:
        return "the entry is not the grant of this id"
    if not tx.signature_ok():
        return "the owner's signature over the grant does not verify"
    return None


def fragments_entry_problem(chain_id: str, grant: GrantEntry, entry: FragmentsEntry) -> str | None:
    """Why ``entry`` is not a regrant of ``grant`` signed by its owner, or None: a node can
    neither alter the refreshed fragments nor fabricate a regrant."""
    tx = _creating_tx(chain_id, entry.owner, entry.nonce, "access.regrant", entry.regrant, entry.signature)
    if entry.grant_id != grant.grant_id or entry.regrant.grant_id != grant.grant_id:
        return "the regrant is for another grant"
    if entry.owner != grant.owner:
        return "the regrant is not by the grant's owner"
    if not tx.signature_ok():
        return "the owner's signature over the regrant does not verify"
    return None
