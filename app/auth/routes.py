"""Console sign-in and sign-out."""

from flask import flash, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.auth import bp, service
from app.auth.forms import SignInForm
from app.auth.guards import client_ip
from app.errors import ServiceUnavailable, TooManyRequests, Unauthenticated
from app.htmx import redirect_to, render, safe_next


def begin_session(token: str) -> None:
    """A brand-new cookie session for a brand-new server session (no fixation)."""
    session.clear()
    session.permanent = True
    login_user(service.load_signed_in(token))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and not current_user.is_platform:
        return redirect_to(url_for("console.home"))
    form = SignInForm(next=request.args.get("next", ""))
    status = 200
    if form.validate_on_submit():
        try:
            token = service.sign_in(email=form.email.data, password=form.password.data, ip=client_ip(),
                                    user_agent=request.headers.get("User-Agent"))
        except (Unauthenticated, TooManyRequests, ServiceUnavailable) as refusal:
            form.form_errors.append(refusal.message)
            status = refusal.status
        else:
            begin_session(token)
            return redirect_to(safe_next(form.next.data, url_for("console.home")))
    elif request.method == "POST":
        status = 400 if form.csrf_token.errors else 422
    return render("auth/login.html", form=form, status=status, realm="console")


@bp.post("/logout")
def logout():
    if current_user.is_authenticated and not current_user.is_platform:
        service.sign_out(person=current_user, ip=client_ip(), user_agent=request.headers.get("User-Agent"))
    logout_user()
    session.clear()
    flash("You are signed out.", "success")
    return redirect_to(url_for("auth.login"))
