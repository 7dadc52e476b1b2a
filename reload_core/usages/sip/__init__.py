"""The SIP Usage for RELOAD (RFC 7904)."""
