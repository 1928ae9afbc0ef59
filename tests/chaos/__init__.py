"""Faults as a city network meets them, on real node processes in network namespaces.

In CI: the minority partition test. Soak-marked (``.venv/bin/python -m pytest -m soak
tests/chaos``): the even split, clock skew, byzantine district, the nemesis short form
and its planted-bug controls; ``make chaos MINUTES=60 NODES=7`` runs the long nemesis.
"""
