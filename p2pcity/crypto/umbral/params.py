"""The scheme's one public parameter: the second generator U.

U = hash_to_curve(b"POINT_U", dst=b"PARAMETERS"), as umbral-pre's params.rs:
derived by hashing so that nobody knows log_G(U), which the kfrag commitment
and the re-encryption proof rely on.
"""

from p2pcity.crypto.umbral.hash_to_curve import hash_to_curve

U = hash_to_curve(b"POINT_U", b"PARAMETERS")
