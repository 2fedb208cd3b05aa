"""OAuth 2.0 authorization server for the public API (issue 13). So far: the token signing keys and the
discovery documents (`keys.py`, `views.py`)."""
