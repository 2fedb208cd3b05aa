"""The forms of the authorization server's pages: a person's consent, the admin's client registration."""
from __future__ import annotations

from wtforms import RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, ValidationError

from app.accounts.forms import at_most, required
from app.clinic.forms import CheckboxList
from app.oauth import scopes
from app.oauth.models import ClientKind, GrantType
from app.oauth.services import SERVICE_ROLES
from app.web.forms import Form

GRANT_LABELS = {
    GrantType.AUTHORIZATION_CODE: "Authorization code (an app acting for a signed-in person, with PKCE)",
    GrantType.REFRESH_TOKEN: "Refresh tokens (with offline_access, rotated on every use)",
    GrantType.CLIENT_CREDENTIALS: "Client credentials (a back-end system acting as its own service account)",
}


class ConsentForm(Form):
    decision = SelectField(choices=[SelectChoice("allow", "Allow"), SelectChoice("deny", "Deny")],
                           validators=[InputRequired(message="Choose Allow or Deny.")])
    # a clinician's SMART launch/patient: the patient whose record the app opens (checked by the policy)
    patient = StringField("Patient", validators=[at_most(18)])


class ClientForm(Form):
    name = StringField("Name", validators=[required("the application's name"), at_most(120)],
                       description="Shown to people on the consent page and under Connected apps.")
    kind = RadioField("Type", default=ClientKind.CONFIDENTIAL.value,
                      choices=[SelectChoice(ClientKind.CONFIDENTIAL.value,
                                            "Confidential: a server that keeps a secret"),
                               SelectChoice(ClientKind.PUBLIC.value,
                                            "Public: a mobile or browser app (no secret, PKCE only)")],
                      validators=[InputRequired(message="Choose public or confidential.")])
    redirect_uris = TextAreaField("Redirect addresses", validators=[at_most(5000)], render_kw={"rows": 3},
                                  description="One per line, exactly as the app sends them: https, or http only for "
                                              "127.0.0.1 or localhost.")
    grant_types = CheckboxList("Grant types", choices=[SelectChoice(g.value, GRANT_LABELS[g]) for g in GrantType])
    allowed_scopes = TextAreaField("Allowed scopes", validators=[required("at least one scope"), at_most(2000)],
                                   render_kw={"rows": 3},
                                   description="Space-separated, e.g. patient/Appointment.cruds offline_access, "
                                               "user/Invoice.rs, system/*.rs (see docs/api.md).")
    service_role = SelectField("Service account role", validate_choice=False,
                               choices=[SelectChoice("", "None (no client credentials)")]
                               + [SelectChoice(r.value, r.label) for r in SERVICE_ROLES],
                               description="Client credentials only: the role whose access the client has.")

    def validate_grant_types(self, field):
        if not field.data:
            raise ValidationError("Choose at least one grant type.")

    def validate_allowed_scopes(self, field):
        try:
            scopes.validate(field.data or "")
        except scopes.ScopeError as error:
            raise ValidationError(str(error)) from None

    def validate_service_role(self, field):
        if field.data and field.data not in {r.value for r in SERVICE_ROLES}:
            raise ValidationError("Choose doctor, billing clerk or admin.")

    def uris(self) -> list[str]:
        return [line.strip() for line in (self.redirect_uris.data or "").splitlines() if line.strip()]
