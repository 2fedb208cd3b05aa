"""The public REST API (issue 13). So far only its error answers: `app/api/problems.py`."""
