#!/usr/bin/env bash
# Serves HMS with its companion processes in the foreground (Ctrl-C stops them all):
# the Kafka-protocol broker (tansu, in memory), the SMTP mailbox, the local SMS gateway,
# the worker (relay, notifications, audit) and the web app.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi.py
# Local services unless the environment points elsewhere.
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${HMS_BROKER_PORT:-9092}}
export SMS_ACCOUNT_SID=${SMS_ACCOUNT_SID:-ACdevelopment0000000000000000000}
export SMS_AUTH_TOKEN=${SMS_AUTH_TOKEN:-development-token}
export SMS_FROM_NUMBER=${SMS_FROM_NUMBER:-+12025550100}
export SMS_GATEWAY_URL=${SMS_GATEWAY_URL-http://127.0.0.1:${HMS_SMS_PORT:-5002}}
mkdir -p var/mailbox var/sms
echo "HMS is starting on http://${HMS_BIND:-127.0.0.1:5000}  (mail: var/mailbox/, SMS: var/sms/)"
exec .venv/bin/honcho -f scripts/Procfile -d . start
