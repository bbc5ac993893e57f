"""TLS: record and handshake parsing, certificates, key schedule and record decryption."""
