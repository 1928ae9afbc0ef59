"""Regenerate umbral.json: run ``.venv/bin/python tests/crypto/vectors/make_umbral_vectors.py``.

Needs umbral-pre 0.11.0. The "umbral_pre" section is random output of
umbral-pre (it signs and encrypts with fresh randomness), frozen once and kept
on later runs (delete the section to draw a new one); every other section is
deterministic and must come out identical on every run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import umbral_pre  # noqa: E402

from tests.crypto.test_umbral import (  # noqa: E402
    VECTORS_PATH,
    deterministic_flow,
    fixed_party,
)

FORMAT = """\
Umbral PRE test vectors for p2pcity.crypto.umbral, compatible with umbral-pre 0.11.0.
All byte strings are lowercase hex. Keys: labelled secret keys are
SHA-256(label) as a big-endian scalar, labels p2pcity/umbral/{delegating,receiving,signer};
public keys are 33-byte compressed SEC1. Encodings: capsule/kfrag/cfrag are
umbral-pre's bytes(obj) (MessagePack arrays of bin8 fields; 105/310/381 bytes),
*_simple are umbral-pre's to_bytes_simple() (98/359 bytes).
parameters.u: the second generator U = hash_to_curve(b"POINT_U", DST b"PARAMETERS").
hash_to_curve: RFC 9380 secp256k1_XMD:SHA-256_SSWU_RO_ (appendix J.8.1 vectors) and U.
secret_key_factory: SecretKeyFactory(seed).make_key(label) (key), .make_secret(label)
(secret), .make_factory(label).make_key(label) (factory_key); from umbral-pre.
umbral_pre: made by umbral-pre with the fixed keys: encrypt(delegating_pk, plaintext),
generate_kfrags(..., threshold, shares, True, True), reencrypt of every kfrag;
any `threshold` cfrags must decrypt with the receiving key.
ours: made by our code with the fixed keys and a deterministic rng, the
SHAKE-256 stream of rng_seed read sequentially; order of use: encrypt,
generate_kfrags(2, 3), reencrypt of kfrags 0..2, encrypt_to(receiving_pk, kfrags[0]).
Signatures are RFC 6979, so these bytes are fixed for our implementation;
umbral-pre must accept all of them.
"""

RFC9380_DST = "QUUX-V01-CS02-with-secp256k1_XMD:SHA-256_SSWU_RO_"
RFC9380 = [
    ("", "03c1cae290e291aee617ebaef1be6d73861479c48b841eaba9b7b5852ddfeb1346"),
    ("abc", "023377e01eab42db296b512293120c6cee72b6ecf9f9205760bd9ff11fb3cb2c4b"),
]


def umbral_u() -> str:
    coords = umbral_pre.Parameters().u.coordinates
    assert coords is not None
    x, y = coords
    return (bytes([2 + (y[-1] & 1)]) + x).hex()


def main() -> None:
    party = fixed_party()
    t_alice = umbral_pre.SecretKey.from_be_bytes(party.alice.to_secret_bytes())
    t_bob = umbral_pre.SecretKey.from_be_bytes(party.bob.to_secret_bytes())
    t_signer = umbral_pre.Signer(umbral_pre.SecretKey.from_be_bytes(party.signer_key.to_secret_bytes()))
    u = umbral_u()

    factories = []
    for seed, label in ((bytes(range(32)), "abc"), (b"\xa5" * 32, "p2pcity/node/pre")):
        f = umbral_pre.SecretKeyFactory.from_secure_randomness(seed)
        lab = label.encode()
        factories.append(
            {
                "seed": seed.hex(),
                "label": label,
                "key": f.make_key(lab).to_be_bytes().hex(),
                "secret": f.make_secret(lab).hex(),
                "factory_key": f.make_factory(lab).make_key(lab).to_be_bytes().hex(),
            }
        )

    plaintext = b"made by umbral-pre 0.11"
    capsule, ciphertext = umbral_pre.encrypt(t_alice.public_key(), plaintext)
    kfrags = umbral_pre.generate_kfrags(t_alice, t_bob.public_key(), t_signer, 2, 3, True, True)
    cfrags = [umbral_pre.reencrypt(capsule, k) for k in kfrags]

    old = json.loads(VECTORS_PATH.read_text()) if VECTORS_PATH.exists() else {}
    data = {
        "format": FORMAT,
        "parameters": {"u": u},
        "hash_to_curve": [{"dst": RFC9380_DST, "msg": msg, "point": point} for msg, point in RFC9380]
        + [{"dst": "PARAMETERS", "msg": "POINT_U", "point": u}],
        "keys": {
            "delegating_sk": party.alice.to_secret_bytes().hex(),
            "delegating_pk": t_alice.public_key().to_compressed_bytes().hex(),
            "receiving_sk": party.bob.to_secret_bytes().hex(),
            "receiving_pk": t_bob.public_key().to_compressed_bytes().hex(),
            "signer_sk": party.signer_key.to_secret_bytes().hex(),
            "verifying_pk": t_signer.verifying_key().to_compressed_bytes().hex(),
        },
        "secret_key_factory": factories,
        "umbral_pre": old.get("umbral_pre")
        or {
            "plaintext": plaintext.hex(),
            "capsule": bytes(capsule).hex(),
            "capsule_simple": capsule.to_bytes_simple().hex(),
            "ciphertext": ciphertext.hex(),
            "threshold": 2,
            "shares": 3,
            "kfrags": [bytes(k).hex() for k in kfrags],
            "cfrags": [bytes(c).hex() for c in cfrags],
            "cfrags_simple": [c.to_bytes_simple().hex() for c in cfrags],
        },
        "ours": deterministic_flow(bytes.fromhex("00112233445566778899aabbccddeeff"), party),
    }
    VECTORS_PATH.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {VECTORS_PATH}")


if __name__ == "__main__":
    main()
