from flask_wtf import FlaskForm
from wtforms import IntegerField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional


class BreakGlassForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[DataRequired(message="Say why you need to elevate."),
                                                 Length(min=10, max=1000,
                                                        message="Between 10 and 1000 characters.")])
    minutes = IntegerField("Minutes", validators=[Optional(), NumberRange(min=1, max=240)])

