"""Cryptographic primitives: hashes, Merkle trees, Ed25519 identities, Umbral PRE.

Pure functions only: this package imports no I/O library (no trio, libp2p or
rocksdict) and nothing else of p2pcity.
"""
