"""`medzoo serve`: the clinician web application and its JSON API (FastAPI, served by uvicorn).

Pages: /register, /login, /upload, /predictions/<id>, /history, /review,
/logout. API (bearer token from POST /api/token): /api/predictions,
/api/review, documented at /api/docs (OpenAPI, behind log-in). Every route
but log-in and register needs a session; review routes need the reviewer
role; every form carries a CSRF token.

Examples:
    >>> app = create_app(Settings(model="runs/stroke", data_dir="serve_data"))   # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, port=8000)                             # doctest: +SKIP
"""

import json
import logging
import secrets

from fastapi import Depends, FastAPI, Request, UploadFile
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from medzoo.errors import InputError
from medzoo.io.atomic import csv_text
from medzoo.serve.reports import iso_time
from medzoo.serve.security import presession_token, same_token
from medzoo.serve.service import AuthError, Service, Settings, display_name
from medzoo.serve.templating import TEMPLATES

__all__ = ["Settings", "create_app"]
SESSION_COOKIE, CSRF_COOKIE = "medzoo_session", "medzoo_csrf"
LOG = logging.getLogger("medzoo.serve")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
}


class Credentials(BaseModel):
    username: str
    password: str


class ReviewIn(BaseModel):
    label: str
    comment: str = ""


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413, refused on its declared length or cut off
    as it streams in (an HTTPException the app's handler renders)."""

    def __init__(self, app, limit):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, self.message)
            return message

        await self.app(scope, counted, send)

    @property
    def message(self):
        return f"The upload is larger than the limit of {self.limit:,} bytes."

    async def _refuse(self, scope, receive, send):
        response = (JSONResponse({"detail": self.message}, 413) if scope["path"].startswith("/api/")
                    else HTMLResponse(TEMPLATES.get_template("base.html").render(error=self.message), 413))  # fmt: skip
        await response(scope, receive, send)


def create_app(settings, model=None):
    """The FastAPI application for `settings` (a `Settings`); `model` overrides loading `settings.model`."""
    service = Service(settings, model)
    app = FastAPI(title="medzoo", summary="Image classification with Grad-CAM reports and review",
                  docs_url=None, redoc_url=None, openapi_url=None)  # fmt: skip
    app.state.service = service

    @app.middleware("http")
    async def security_headers(request, call_next):
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            if not (key == "Content-Security-Policy" and request.url.path == "/api/docs"):
                response.headers.setdefault(key, value)
        return response

    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + 64 * 1024)  # room for the form's own fields

    def set_cookie(response, name, value, max_age=None, samesite="lax"):
        response.set_cookie(name, value, max_age=max_age, httponly=True, secure=settings.secure_cookies,
                            samesite=samesite, path="/")  # fmt: skip

    presession_secret = secrets.token_bytes(32)  # signs the log-in forms' CSRF tokens (a restart: reload the page)

    def page(name, request, status=200, user=None, login=None, **context):
        presession = None
        if login is None:  # a browser not logged in gets a pre-session cookie; its form token is the cookie's HMAC
            presession = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        csrf = login.csrf_token if login is not None else presession_token(presession_secret, presession)
        response = HTMLResponse(TEMPLATES.get_template(name).render(user=user, csrf_token=csrf, **context), status)
        if presession and request.cookies.get(CSRF_COOKIE) != presession:
            set_cookie(response, CSRF_COOKIE, presession, samesite="strict")
        return response

    # --- who is asking --------------------------------------------------------------------
    class LoginRequired(Exception):
        pass

    @app.exception_handler(LoginRequired)
    async def to_login(request, _error):
        return RedirectResponse("/login", 303)

    def browser_user(request: Request):
        user, login = service.authenticate(request.cookies.get(SESSION_COOKIE), "browser")
        if user is None:
            raise LoginRequired
        return user, login

    def api_user(request: Request):
        """The bearer token's user (never the session cookie: an API call carries no CSRF token)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user, _ = service.authenticate(token.strip(), "api") if scheme.lower() == "bearer" else (None, None)
        if user is None:
            raise HTTPException(401, "Log in first: POST /api/token, then send 'Authorization: Bearer <token>'.")
        return user

    def api_or_browser_user(request: Request):
        """For GET /api/openapi.json, which the docs page fetches with the session cookie."""
        user, _ = service.authenticate(request.cookies.get(SESSION_COOKIE), "browser")
        return user or api_user(request)

    def reviewer(user):
        if user.role != "reviewer":
            raise HTTPException(403, "Reviewers only.")
        return user

    async def checked_form(request, login=None):
        form = await request.form()
        expected = (login.csrf_token if login is not None
                    else presession_token(presession_secret, request.cookies.get(CSRF_COOKIE)))  # fmt: skip
        if not same_token(form.get("csrf_token"), expected):
            raise HTTPException(403, "The form did not come from this site or has expired (CSRF check failed): "
                                     "reload the page and try again.")  # fmt: skip
        return form

    @app.exception_handler(HTTPException)
    async def http_error(request, error):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": error.detail}, error.status_code, headers=getattr(error, "headers", None))
        return HTMLResponse(TEMPLATES.get_template("base.html").render(error=error.detail), error.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request, error):
        LOG.exception("unexpected error on %s %s", request.method, request.url.path)
        message = "Something went wrong on the server; the error is logged. Nothing was stored for this request."
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, 500)
        return HTMLResponse(TEMPLATES.get_template("base.html").render(error=message), 500)

    # --- pages: accounts --------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def home(request: Request):
        user, _ = service.authenticate(request.cookies.get(SESSION_COOKIE), "browser")
        return RedirectResponse("/upload" if user else "/login", 303)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request):
        return page("login.html", request, registration=settings.registration)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request):
        form = await checked_form(request)
        try:
            token, _ = await run_in_threadpool(service.log_in, _address(request), str(form.get("username", "")),
                                               str(form.get("password", "")), "browser")  # fmt: skip
        except AuthError as error:
            status = 429 if error.retry_after else 401
            response = page("login.html", request, status, error=str(error), registration=settings.registration)
            if error.retry_after:
                response.headers["Retry-After"] = str(int(error.retry_after) + 1)
            return response
        response = RedirectResponse("/upload", 303)
        set_cookie(response, SESSION_COOKIE, token, max_age=int(settings.session_hours * 3600))
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @app.get("/register", include_in_schema=False)
    def register_page(request: Request):
        if not settings.registration:
            raise HTTPException(404, "Registration is switched off: ask an administrator for an account.")
        return page("register.html", request)

    @app.post("/register", include_in_schema=False)
    async def register(request: Request):
        if not settings.registration:
            raise HTTPException(404, "Registration is switched off: ask an administrator for an account.")
        form = await checked_form(request)
        try:
            await run_in_threadpool(service.register, str(form.get("username", "")), str(form.get("password", "")))
        except InputError as error:
            return page("register.html", request, 400, error=str(error))
        return RedirectResponse("/login", 303)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request, who=Depends(browser_user)):
        await checked_form(request, who[1])
        service.log_out(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- pages: predictions -------------------------------------------------------------------
    def upload_page(request, who, status=200, error=None):
        return page("upload.html", request, status, *who, error=error, model_version=service.model.version,
                    threshold=settings.review_threshold, max_megabytes=settings.max_upload_bytes // 2**20)  # fmt: skip

    @app.get("/upload", include_in_schema=False)
    def upload_form(request: Request, who=Depends(browser_user)):
        return upload_page(request, who)

    @app.post("/upload", include_in_schema=False)
    async def upload(request: Request, who=Depends(browser_user)):
        form = await checked_form(request, who[1])
        upload = form.get("file")
        if not hasattr(upload, "read"):
            return upload_page(request, who, 400, "Choose a file to upload.")
        try:
            prediction = await run_in_threadpool(service.predict, who[0], await upload.read(), upload.filename)
        except InputError as error:
            return upload_page(request, who, 422, f"{display_name(upload.filename)}: {error}")
        return RedirectResponse(f"/predictions/{prediction.id}", 303)

    def visible(user, prediction_id):
        prediction = service.visible_prediction(user, prediction_id)
        if prediction is None:
            raise HTTPException(404, "No such prediction.")  # the same answer for another user's
        return prediction

    @app.get("/predictions/{prediction_id}", include_in_schema=False)
    def result(request: Request, prediction_id: str, who=Depends(browser_user)):
        prediction = visible(who[0], prediction_id)
        return page("result.html", request, 200, *who, prediction=prediction, created_at=iso_time(prediction.created_at),
                    probabilities=json.loads(prediction.probabilities).items(), images=service.case_images(prediction),
                    explains=service.model.explains, reviews=service.db.reviews_of(prediction.id),
                    labels=service.model.labels)  # fmt: skip

    def case_file_response(user, prediction_id, name):
        path = service.case_file(visible(user, prediction_id), name)
        if path is None:
            raise HTTPException(404, "No such file.")
        download = f"medzoo-{prediction_id}-{name}" if name.startswith("report") else None
        return FileResponse(path, filename=download)

    @app.get("/predictions/{prediction_id}/images/{name}", include_in_schema=False)
    def case_image(prediction_id: str, name: str, who=Depends(browser_user)):
        return case_file_response(who[0], prediction_id, name)

    @app.get("/predictions/{prediction_id}/{name}", include_in_schema=False)
    def report(prediction_id: str, name: str, who=Depends(browser_user)):
        return case_file_response(who[0], prediction_id, name)

    @app.get("/history", include_in_schema=False)
    def history(request: Request, who=Depends(browser_user)):
        return page("history.html", request, 200, *who, heading="Your predictions",
                    predictions=service.db.predictions_of(who[0].id))  # fmt: skip

    @app.get("/review", include_in_schema=False)
    def review_queue(request: Request, who=Depends(browser_user)):
        reviewer(who[0])
        return page("history.html", request, 200, *who, heading="Review queue", review=True,
                    predictions=service.db.review_queue())  # fmt: skip

    @app.get("/review/manifest.csv", include_in_schema=False)
    def manifest_page(who=Depends(browser_user)):
        reviewer(who[0])
        return _csv(service.manifest_rows())

    @app.post("/review/{prediction_id}", include_in_schema=False)
    async def review(request: Request, prediction_id: str, who=Depends(browser_user)):
        reviewer(who[0])
        form = await checked_form(request, who[1])
        try:
            service.review(who[0], prediction_id, str(form.get("label", "")), str(form.get("comment", "")))
        except InputError as error:
            raise HTTPException(400, str(error)) from None
        return RedirectResponse(f"/predictions/{prediction_id}", 303)

    # --- JSON API -----------------------------------------------------------------------------------
    @app.post("/api/token", tags=["auth"])
    def api_token(credentials: Credentials, request: Request):
        """Trades a user name and password for a bearer token (throttled like the log-in page)."""
        try:
            token, login = service.log_in(_address(request), credentials.username, credentials.password, "api")
        except AuthError as error:
            headers = {"Retry-After": str(int(error.retry_after) + 1)} if error.retry_after else None
            raise HTTPException(429 if error.retry_after else 401, str(error), headers=headers) from None
        return {"token": token, "token_type": "bearer", "expires_at": login.expires_at.isoformat()}

    @app.delete("/api/token", tags=["auth"], status_code=204)
    def api_revoke(request: Request, user=Depends(api_user)):
        """Revokes the bearer token this request carries."""
        service.log_out(request.headers.get("authorization", "").partition(" ")[2].strip())
        return Response(status_code=204)

    @app.post("/api/predictions", tags=["predictions"], status_code=201)
    def api_predict(file: UploadFile, user=Depends(api_user)):
        """Classifies an uploaded DICOM, NIfTI, PNG or JPEG file; returns the logged prediction."""
        try:
            prediction = service.predict(user, file.file.read(), file.filename)
        except InputError as error:
            raise HTTPException(422, f"{display_name(file.filename)}: {error}") from None
        return _prediction_json(service, prediction)

    @app.get("/api/predictions", tags=["predictions"])
    def api_predictions(user=Depends(api_user)):
        """Your predictions, newest first."""
        return [_prediction_json(service, p) for p in service.db.predictions_of(user.id)]

    @app.get("/api/predictions/{prediction_id}", tags=["predictions"])
    def api_prediction(prediction_id: str, user=Depends(api_user)):
        return _prediction_json(service, visible(user, prediction_id))

    @app.get("/api/predictions/{prediction_id}/{name}", tags=["predictions"])
    def api_report(prediction_id: str, name: str, user=Depends(api_user)):
        """report.pdf, report.html, input.png, chart.png or gradcam_<backbone>.png of a prediction."""
        return case_file_response(user, prediction_id, name)

    @app.get("/api/review", tags=["review"])
    def api_review_queue(user=Depends(api_user)):
        """Predictions below the confidence gate that no reviewer has answered (reviewers only)."""
        reviewer(user)
        return [_prediction_json(service, p) for p in service.db.review_queue()]

    @app.post("/api/predictions/{prediction_id}/reviews", tags=["review"], status_code=201)
    def api_add_review(prediction_id: str, body: ReviewIn, user=Depends(api_user)):
        """Confirms or corrects a prediction's label (reviewers only); the prediction itself is never changed."""
        reviewer(user)
        try:
            review = service.review(user, prediction_id, body.label, body.comment)
        except InputError as error:
            raise HTTPException(400, str(error)) from None
        return {"id": review.id, "prediction": prediction_id, "label": review.label, "comment": review.comment}

    @app.get("/api/review/manifest.csv", tags=["review"])
    def api_manifest(user=Depends(api_user)):
        """Reviewed cases as a retraining manifest: path, label (the reviewer's), id, predicted, prediction."""
        reviewer(user)
        return _csv(service.manifest_rows())

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(user=Depends(api_or_browser_user)):
        return app.openapi()

    if settings.api_docs:  # Swagger UI's script comes from a CDN, outside the CSP: only when asked for

        @app.get("/api/docs", include_in_schema=False)
        def docs(who=Depends(browser_user)):
            return get_swagger_ui_html(openapi_url="/api/openapi.json", title="medzoo API")

    return app


def _address(request):
    return request.client.host if request.client else "unknown"


def _csv(rows):
    return Response(csv_text(rows, ["path", "label", "id", "predicted", "prediction"], formula_safe=True),
                    media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="feedback_manifest.csv"'})  # fmt: skip


def _prediction_json(service, prediction):
    base = f"/api/predictions/{prediction.id}"
    return {"id": prediction.id, "created_at": iso_time(prediction.created_at), "model_version": prediction.model_version,
            "input_sha256": prediction.input_sha256, "input_kind": prediction.input_kind,
            "file_name": prediction.file_name, "label": prediction.label, "confidence": prediction.confidence,
            "probabilities": json.loads(prediction.probabilities), "needs_review": prediction.needs_review,
            "report": {"pdf": base + "/report.pdf", "html": base + "/report.html"},
            "images": [base + "/" + name for name, _ in service.case_images(prediction)],
            "reviews": [{"label": r.label, "comment": r.comment} for r in service.db.reviews_of(prediction.id)]}  # fmt: skip
