from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.workspaces.roles import ROLES


class TenantCheckboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class MemberForm(FlaskForm):
    role = SelectField("Role", choices=dict(ROLES), validators=[DataRequired()])
    tenant_ids = TenantCheckboxes("Limit to tenants (none ticked = all tenants)", coerce=int,
                                  validate_choice=False)


class AddMemberForm(MemberForm):
    email = EmailField("E-mail", validators=[DataRequired(message="Enter an e-mail address."), Length(max=254)])
    name = StringField("Name (new people only)", validators=[Optional(), Length(max=200)])
    password = PasswordField("Initial password (new people only)", validators=[Optional(), Length(max=256)])


class TenantForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Give the tenant a name."), Length(max=200)])
    slug = StringField("Slug", validators=[DataRequired(message="Give the tenant a slug."), Length(max=63)])
