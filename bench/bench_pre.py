"""Throughput of our Umbral (p2pcity.crypto.umbral) against umbral-pre 0.11, same run.

    python bench/bench_pre.py [--quick]

Prints ops/s per operation for each implementation and ours/theirs (above 1
means ours is faster). umbral-pre is optional: without it only our column is
printed. Each figure is the median of three timed runs; on a shared VM expect
+-20 % between invocations, so compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2pcity.crypto import umbral as ours

theirs: Any
try:
    import umbral_pre as theirs
except ImportError:  # the yardstick is optional; it is not a runtime dependency
    theirs = None

PLAINTEXT = os.urandom(1024)


def ops_per_second(fn: Callable[[], object], budget: float) -> float:
    """Median over three runs of calls per second, each run lasting about ``budget`` / 3 s."""
    fn()  # warm caches and lazy state outside the timing
    rates = []
    for _ in range(3):
        n = 0
        start = time.perf_counter()
        deadline = start + budget / 3
        while True:
            fn()
            n += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        rates.append(n / (now - start))
    return statistics.median(rates)


def our_ops() -> dict[str, Callable[[], object]]:
    alice = ours.SecretKey.random()
    bob = ours.SecretKey.random()
    signer = ours.Signer(ours.SecretKey.random())
    apk, bpk, vpk = alice.public_key(), bob.public_key(), signer.verifying_key()
    capsule, ciphertext = ours.encrypt(apk, PLAINTEXT)
    kfrags = {t: ours.generate_kfrags(alice, bpk, signer, t, n) for t, n in ((2, 3), (3, 5))}
    cfrags = {t: [ours.reencrypt(capsule, k) for k in ks] for t, ks in kfrags.items()}
    kfrag_bytes = bytes(kfrags[2][0])
    cfrag_bytes = bytes(cfrags[2][0])
    blob = ours.encrypt_to(bpk, kfrag_bytes)
    return {
        "encrypt 1KB": lambda: ours.encrypt(apk, PLAINTEXT),
        "decrypt_original 1KB": lambda: ours.decrypt_original(alice, capsule, ciphertext),
        "generate_kfrags 2-of-3 (set)": lambda: ours.generate_kfrags(alice, bpk, signer, 2, 3),
        "generate_kfrags 3-of-5 (set)": lambda: ours.generate_kfrags(alice, bpk, signer, 3, 5),
        "kfrag from_bytes+verify": lambda: ours.KeyFrag.from_bytes(kfrag_bytes).verify(vpk, apk, bpk),
        "reencrypt (1 cfrag, proof)": lambda: ours.reencrypt(capsule, kfrags[2][0]),
        "cfrag from_bytes+verify": lambda: ours.CapsuleFrag.from_bytes(cfrag_bytes).verify(
            capsule, vpk, apk, bpk
        ),
        "decrypt_reencrypted 1KB (2 cfrags)": lambda: ours.decrypt_reencrypted(
            bob, apk, capsule, cfrags[2][:2], ciphertext
        ),
        "decrypt_reencrypted 1KB (3 cfrags)": lambda: ours.decrypt_reencrypted(
            bob, apk, capsule, cfrags[3][:3], ciphertext
        ),
        "encrypt_to+decrypt_from (kfrag)": lambda: ours.decrypt_from(bob, ours.encrypt_to(bpk, kfrag_bytes)),
        "decrypt_from (kfrag)": lambda: ours.decrypt_from(bob, blob),
    }


def their_ops() -> dict[str, Callable[[], object]]:
    assert theirs is not None
    t: Any = theirs
    alice = t.SecretKey.random()
    bob = t.SecretKey.random()
    signer = t.Signer(t.SecretKey.random())
    apk, bpk, vpk = alice.public_key(), bob.public_key(), signer.verifying_key()
    capsule, ciphertext = t.encrypt(apk, PLAINTEXT)
    kfrags = {k: t.generate_kfrags(alice, bpk, signer, k, n, True, True) for k, n in ((2, 3), (3, 5))}
    cfrags = {k: [t.reencrypt(capsule, kf) for kf in ks] for k, ks in kfrags.items()}
    kfrag_bytes = bytes(kfrags[2][0])
    cfrag_bytes = bytes(cfrags[2][0])
    return {
        "encrypt 1KB": lambda: t.encrypt(apk, PLAINTEXT),
        "decrypt_original 1KB": lambda: t.decrypt_original(alice, capsule, ciphertext),
        "generate_kfrags 2-of-3 (set)": lambda: t.generate_kfrags(alice, bpk, signer, 2, 3, True, True),
        "generate_kfrags 3-of-5 (set)": lambda: t.generate_kfrags(alice, bpk, signer, 3, 5, True, True),
        "kfrag from_bytes+verify": lambda: t.KeyFrag.from_bytes(kfrag_bytes).verify(vpk, apk, bpk),
        "reencrypt (1 cfrag, proof)": lambda: t.reencrypt(capsule, kfrags[2][0]),
        "cfrag from_bytes+verify": lambda: t.CapsuleFrag.from_bytes(cfrag_bytes).verify(
            capsule, vpk, apk, bpk
        ),
        "decrypt_reencrypted 1KB (2 cfrags)": lambda: t.decrypt_reencrypted(
            bob, apk, capsule, cfrags[2][:2], ciphertext
        ),
        "decrypt_reencrypted 1KB (3 cfrags)": lambda: t.decrypt_reencrypted(
            bob, apk, capsule, cfrags[3][:3], ciphertext
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.15 s per figure instead of 0.6 s")
    args = parser.parse_args()
    budget = 0.15 if args.quick else 0.6

    mine = our_ops()
    other = their_ops() if theirs is not None else {}
    header = f"{'operation':38} {'ours ops/s':>11} {'umbral-pre':>11} {'ours/theirs':>11}"
    print(header)
    print("-" * len(header))
    for name, fn in mine.items():
        ours_rate = ops_per_second(fn, budget)
        if name in other:
            their_rate = ops_per_second(other[name], budget)
            print(f"{name:38} {ours_rate:11,.0f} {their_rate:11,.0f} {ours_rate / their_rate:11.2f}")
        else:
            print(f"{name:38} {ours_rate:11,.0f} {'-':>11} {'-':>11}")
    if theirs is None:
        print("\numbral-pre not importable: pip install umbral-pre==0.11.0 for the comparison")


if __name__ == "__main__":
    main()
