"""Console sign-in and sign-out."""

from flask import flash, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.auth import bp, service, sessions
from app.auth.forms import SignInForm
from app.auth.guards import client_ip
from app.errors import ServiceUnavailable, TooManyRequests, Unauthenticated
from app.htmx import redirect_to, render, safe_next


def begin_session(token: str) -> None:
    """A brand-new cookie session for a brand-new server session (no fixation)."""
    session.clear()
    session.permanent = True
    login_user(sessions.load_signed_in(token))


def sign_in_view(*, sign_in, realm: str, home: str, already_signed_in: bool):
    """The sign-in form of the console or /system: same throttle, same answers, new session."""
    if already_signed_in:
        return redirect_to(home)
    form = SignInForm(next=request.args.get("next", ""))
    status, retry_after = 200, None
    if form.validate_on_submit():
        try:
            token = sign_in(email=form.email.data, password=form.password.data, ip=client_ip(),
                            user_agent=request.headers.get("User-Agent"))
        except (Unauthenticated, TooManyRequests, ServiceUnavailable) as refusal:
            form.form_errors.append(refusal.message)
            status, retry_after = refusal.status, getattr(refusal, "retry_after", None)
        else:
            begin_session(token)
            return redirect_to(safe_next(form.next.data, home))
    elif request.method == "POST":
        status = 400 if form.csrf_token.errors else 422
    response = render("auth/login.html", form=form, status=status, realm=realm,
                      area="system" if realm == "system" else "public")
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    return sign_in_view(sign_in=service.sign_in, realm="console", home=url_for("console.home"),
                        already_signed_in=current_user.is_authenticated and not current_user.is_platform)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated and not current_user.is_platform:
        service.sign_out(person=current_user, ip=client_ip(), user_agent=request.headers.get("User-Agent"))
    logout_user()
    session.clear()
    flash("You are signed out.", "success")
    return redirect_to(url_for("auth.login"))
