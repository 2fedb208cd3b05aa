"""Every model module, imported so that the metadata (and Alembic) sees all tables."""
from app.accounts.models import (LoginFailure, PasswordToken, PatientProfile, RecoveryCode, TotpFactor,  # noqa: F401
                                 User)
from app.audit.models import AuditChainHead, AuditEntry  # noqa: F401
from app.events.models import OutboxEvent, ProcessedEvent, WorkerHeartbeat  # noqa: F401
from app.notifications.models import Notification, NotificationTemplate  # noqa: F401
from app.clinic.models import Department, DoctorProfile  # noqa: F401
from app.scheduling.models import Unavailability, WeeklyAvailability  # noqa: F401
from app.appointments.models import Appointment, ReminderSent, StatusChange  # noqa: F401
from app.records.models import (Allergy, AllergyAcknowledgement, BreakGlassGrant, Diagnosis, Encounter,  # noqa: F401
                                Prescription)
from app.billing.models import Claim, Invoice, InvoiceCounter, InvoiceHistory, InvoiceLine, Payment, PriceItem, Refund  # noqa: F401
from app.oauth.models import (OAuthAuthorizationCode, OAuthClient, OAuthGrant, OAuthRefreshToken,  # noqa: F401
                              RevokedAccessToken)
from app.api.models import IdempotencyKey, RateLimitCounter  # noqa: F401
