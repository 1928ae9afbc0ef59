"""The deterministic simulator of the consensus core (see simulator.py) and its scenarios."""
