"""Tests of the bootstrap node program (bootstrap/)."""
