from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.audit.forms import AuditFilterForm


class BreakGlassForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[DataRequired(message="Say why you need to elevate."),
                                                 Length(min=10, max=1000,
                                                        message="Between 10 and 1000 characters.")])
    minutes = IntegerField("Minutes", validators=[Optional(), NumberRange(min=1, max=240)])


class PlatformAuditFilterForm(AuditFilterForm):
    workspace = SelectField("Workspace", choices={"": "All chains"}, validators=[Optional()])
