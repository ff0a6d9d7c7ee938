"""The service's records through SQLAlchemy: users, log-in sessions, the prediction log and reviews.

SQLite by default (`sqlite:///DATA/medzoo.db`, embedded), PostgreSQL by URL
(`postgresql+psycopg://user@host/db`). A prediction is never changed after
it is written: a reviewer's confirmation or correction is a row of its own.

Examples:
    >>> db = Database("sqlite://")
    >>> user = db.create_user("ana", "$argon2id$...", role="reviewer")
    >>> (user.username, user.role)
    ('ana', 'reviewer')
"""

import datetime
import json
import os
import uuid

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text, create_engine, event, select
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from medzoo.errors import InputError

ROLES = ("clinician", "reviewer")


def default_url(data_dir):
    """The SQLite database a service keeps in its data dir (the folder is created).

    Examples:
        >>> import tempfile
        >>> default_url(tempfile.mkdtemp()).endswith("/medzoo.db")
        True
    """
    os.makedirs(data_dir, exist_ok=True)
    return "sqlite:///" + os.path.join(os.path.abspath(data_dir), "medzoo.db")


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class LoginSession(Base):
    """A browser session or an API token; only the token's SHA-256 is stored."""

    __tablename__ = "sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "browser" or "api"
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class Prediction(Base):
    __tablename__ = "predictions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    model_version: Mapped[str] = mapped_column(String(128))
    input_sha256: Mapped[str] = mapped_column(String(64), index=True)
    input_kind: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(255))  # shown to its owner; never used as a path
    label: Mapped[str] = mapped_column(String(128))
    confidence: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[str] = mapped_column(Text)  # JSON {class: probability}
    needs_review: Mapped[bool] = mapped_column(Boolean, index=True)
    report_path: Mapped[str] = mapped_column(String(255))  # relative to the data dir


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    label: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text, default="")


def _as_utc(moment):
    """SQLite hands back naive datetimes: they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


class Database:
    """The service's database at `url` (tables created when missing)."""

    def __init__(self, url):
        options = {}
        if url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if url in ("sqlite://", "sqlite:///:memory:"):
                options["poolclass"] = StaticPool  # one shared in-memory database
        try:
            self.engine = create_engine(url, **options)
            if url.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas)
            Base.metadata.create_all(self.engine)
        except (ArgumentError, OperationalError, ImportError) as error:
            shown = self.engine.url.render_as_string(hide_password=True) if hasattr(self, "engine") else "the database URL"
            reason = " ".join(str(getattr(error, "orig", None) or error).split())
            raise InputError(f"{shown}: cannot use this database ({type(error).__name__}: {reason:.200}).") from None
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    # users and sessions
    def create_user(self, username, password_hash, role="clinician"):
        if role not in ROLES:
            raise InputError(f"role {role!r}: expected one of {', '.join(ROLES)}.")
        with self.session() as session:
            user = User(username=username, password_hash=password_hash, role=role)
            session.add(user)
            try:
                session.commit()
            except IntegrityError:
                raise InputError(f"the user name {username!r} is taken.") from None
            return user

    def user_named(self, username):
        with self.session() as session:
            return session.scalar(select(User).where(User.username == username))

    def set_password_hash(self, user_id, password_hash):
        with self.session.begin() as session:
            session.get(User, user_id).password_hash = password_hash

    def add_login_session(self, token_sha256, user_id, kind, csrf_token, lifetime):
        with self.session.begin() as session:
            session.add(LoginSession(token_sha256=token_sha256, user_id=user_id, kind=kind,
                                     csrf_token=csrf_token, expires_at=utc_now() + lifetime))  # fmt: skip

    def session_user(self, token_sha256, kind):
        """(User, LoginSession) of a live session or token, or (None, None)."""
        with self.session() as session:
            login = session.get(LoginSession, token_sha256)
            if login is None or login.kind != kind or _as_utc(login.expires_at) <= utc_now():
                return None, None
            return session.get(User, login.user_id), login

    def end_login_session(self, token_sha256):
        with self.session.begin() as session:
            login = session.get(LoginSession, token_sha256)
            if login is not None:
                session.delete(login)

    # the prediction log
    def add_prediction(self, **fields):
        """Stores one prediction (a new unique id) in one transaction; returns it."""
        fields = {**fields, "probabilities": json.dumps(fields["probabilities"])}
        with self.session.begin() as session:
            prediction = Prediction(id=fields.pop("id", None) or uuid.uuid4().hex, **fields)
            session.add(prediction)
        return prediction

    def prediction(self, prediction_id):
        with self.session() as session:
            return session.get(Prediction, prediction_id)

    def predictions_of(self, user_id, limit=200):
        with self.session() as session:
            query = select(Prediction).where(Prediction.user_id == user_id)
            return list(session.scalars(query.order_by(Prediction.created_at.desc()).limit(limit)))

    def prediction_ids(self):
        with self.session() as session:
            return set(session.scalars(select(Prediction.id)))

    def input_digests(self):
        """SHA-256 of every upload a prediction refers to."""
        with self.session() as session:
            return set(session.scalars(select(Prediction.input_sha256)))

    def review_queue(self, limit=200):
        """Predictions the confidence gate flagged that no reviewer has answered yet, oldest first."""
        with self.session() as session:
            reviewed = select(Review.prediction_id)
            query = select(Prediction).where(Prediction.needs_review, Prediction.id.not_in(reviewed))
            return list(session.scalars(query.order_by(Prediction.created_at).limit(limit)))

    def add_review(self, prediction_id, reviewer_id, label, comment=""):
        with self.session.begin() as session:
            if session.get(Prediction, prediction_id) is None:
                raise InputError(f"no prediction {prediction_id!r}.")
            review = Review(prediction_id=prediction_id, reviewer_id=reviewer_id, label=label, comment=comment)
            session.add(review)
        return review

    def reviews_of(self, prediction_id):
        with self.session() as session:
            query = select(Review).where(Review.prediction_id == prediction_id).order_by(Review.id)
            return list(session.scalars(query))

    def reviewed_cases(self):
        """[(Prediction, its latest Review)] for every reviewed prediction, oldest first."""
        with self.session() as session:
            latest = {}
            for review in session.scalars(select(Review).order_by(Review.id)):
                latest[review.prediction_id] = review
            predictions = session.scalars(select(Prediction).where(Prediction.id.in_(list(latest))))
            return sorted(((p, latest[p.id]) for p in predictions), key=lambda pair: _as_utc(pair[0].created_at))


def _sqlite_pragmas(connection, _record):
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
