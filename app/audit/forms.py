from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, SelectField, StringField
from wtforms.validators import Length, Optional

from app.audit.models import AUDIT_ACTIONS


class AuditFilterForm(FlaskForm):
    """The audit filters, read from the query string (GET: nothing to forge, so no CSRF token)."""

    class Meta:
        csrf = False

    actor = StringField("Actor", validators=[Optional(), Length(max=254)])
    action = SelectField("Action", choices={"": "Any action", **{a: a for a in AUDIT_ACTIONS}},
                         validators=[Optional()])
    ref_type = StringField("Reference type", validators=[Optional(), Length(max=40)])
    ref_id = StringField("Reference id", validators=[Optional(), Length(max=64)])
    tenant = SelectField("Tenant", choices={"": "Any tenant"}, validators=[Optional()], validate_choice=True)
    since = DateTimeLocalField("From (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    until = DateTimeLocalField("Until (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and self.since.data and self.until.data and self.since.data >= self.until.data:
            self.until.errors = list(self.until.errors) + ["Must be after 'From'."]
            ok = False
        return ok
