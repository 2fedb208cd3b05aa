#!/usr/bin/env bash
# Serves HMS and its companion processes in the foreground (Ctrl-C stops them all).
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi.py
echo "HMS is starting on http://${HMS_BIND:-127.0.0.1:5000}"
exec .venv/bin/honcho -f scripts/Procfile -d . start
