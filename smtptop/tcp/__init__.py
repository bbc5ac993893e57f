"""TCP flow tracking: handshake stages and per-direction reassembly. Pure: no I/O."""
