"""OAuth 2.0 authorization server for the public API (issue 13): the scope grammar (`scopes.py`), the token
signing keys (`keys.py`), the resource server's check (`bearer.py`), the grants and clients (`services.py`), the
endpoints for programs (`views.py`) and the pages for people: consent and connected apps (`pages.py`)."""
