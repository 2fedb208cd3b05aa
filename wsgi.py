"""Entry point for gunicorn (`wsgi:app`) and the flask CLI (FLASK_APP=wsgi.py)."""
from app import create_app

app = create_app()
