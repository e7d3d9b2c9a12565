"""Loihi's fixed-point arithmetic: the constants, the LIF step and the integer mapping (fixed_point), and
the one integer simulator of a mapped network, on numpy or torch (simulate). No torch at import."""
