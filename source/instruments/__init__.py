"""Instruments: what measures the code that runs (statements counted, pools sampled)."""
