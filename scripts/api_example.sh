#!/usr/bin/env bash
# The README's API example: a back-end integration (the front desk's call-centre tool) gets a token with client
# credentials, finds a patient, a doctor and a free slot, books it and reads the appointment back.
#
#   CLIENT_ID=… CLIENT_SECRET=… scripts/api_example.sh [patient email]
#
# Register the client first (prints CLIENT_ID and CLIENT_SECRET):
#   .venv/bin/flask --app wsgi oauth-clients create --name "Call centre" --role clerk \
#       --scope "system/Patient.rs system/Practitioner.rs system/Slot.rs system/Appointment.crs"
set -euo pipefail
BASE=${HMS_URL:-http://127.0.0.1:5000}
: "${CLIENT_ID:?set CLIENT_ID (see the comment at the top)}" "${CLIENT_SECRET:?set CLIENT_SECRET}"
PATIENT_EMAIL=${1:-maria.garcia@example.com}

# field KEY...: a value of the JSON document on stdin (numbers index lists)
field() { python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]:
    value = value[int(key)] if key.isdigit() else value[key]
print(value)' "$@"; }

TOKEN=$(curl -sSf -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials "$BASE/oauth/token" \
        | field access_token)
AUTH="Authorization: Bearer $TOKEN"

PATIENT=$(curl -sSf -H "$AUTH" -G "$BASE/api/v1/patients" --data-urlencode "q=$PATIENT_EMAIL" | field items 0 id)
DOCTOR=$(curl -sSf -H "$AUTH" "$BASE/api/v1/doctors?limit=1" | field items 0 id)
FROM=$(date +%F)
TO=$(date -d "+14 days" +%F)
SLOTS=$(curl -sSf -H "$AUTH" "$BASE/api/v1/doctors/$DOCTOR/slots?start=$FROM&end=$TO")
STARTS_AT=$(echo "$SLOTS" | field items 0 starts_at)
DEPARTMENT=$(echo "$SLOTS" | field items 0 department_id)
echo "Booking patient $PATIENT with doctor $DOCTOR at $STARTS_AT"

# Idempotency-Key: a retry of this request (a timeout, a lost answer) can never book twice.
BOOKED=$(curl -sSf -H "$AUTH" -H "Idempotency-Key: $(python3 -c 'import uuid; print(uuid.uuid4())')" \
              -H "Content-Type: application/json" -D - -o /tmp/hms-booked.json "$BASE/api/v1/appointments" \
              -d "{\"patient_id\": $PATIENT, \"doctor_id\": $DOCTOR, \"department_id\": $DEPARTMENT,
                   \"starts_at\": \"$STARTS_AT\", \"reason\": \"Booked by phone\"}")
LOCATION=$(echo "$BOOKED" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
echo "Booked: $LOCATION"
curl -sSf -H "$AUTH" "$BASE$LOCATION"
echo
