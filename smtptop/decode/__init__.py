"""Light link, IP and TCP header decoding for the per-packet hot path."""
