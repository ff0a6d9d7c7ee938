"""Passwords (argon2id), session tokens, CSRF tokens and the log-in throttle.

Examples:
    >>> hashed = hash_password("correct horse")
    >>> hashed.startswith("$argon2id$"), verify_password(hashed, "correct horse"), verify_password(hashed, "wrong")
    (True, True, False)
"""

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import defaultdict, deque

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medzoo.errors import InputError

HASHER = PasswordHasher()  # argon2id, RFC 9106's second recommended setting (64 MiB, 3 passes)
USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,64}")
MIN_PASSWORD_LENGTH = 8
_UNKNOWN_USER_HASH = HASHER.hash(secrets.token_urlsafe(16))


# Each argon2id hash takes 64 MiB: at most this many run at once, whatever the number of clients
# (40 concurrent wrong log-ins once took the service from 0.93 to 2.34 GB).
HASH_SLOTS = threading.BoundedSemaphore(4)


def hash_password(password):
    with HASH_SLOTS:
        return HASHER.hash(password)


def verify_password(password_hash, password):
    """True when `password` matches; an unknown user (hash None) costs the same time and fails."""
    try:
        with HASH_SLOTS:
            return HASHER.verify(password_hash or _UNKNOWN_USER_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_new_account(username, password):
    """Raises InputError for a user name or password the service does not accept."""
    if not USERNAME.fullmatch(username or ""):
        raise InputError("a user name is 3-64 letters, digits, '_', '.' or '-'.")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InputError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters.")


def new_token():
    """(token for the client, its SHA-256 for the database)."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(given, expected):
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


def presession_token(secret, presession):
    """The log-in form's CSRF token for a browser's pre-session cookie: an HMAC under the server's secret.

    A cookie an attacker plants does not help: without the secret they cannot
    make the token that matches it (a plain double-submit check would accept
    any equal cookie/token pair).

    Examples:
        >>> presession_token(b"k" * 32, "abc") == presession_token(b"k" * 32, "abc") != presession_token(b"j" * 32, "abc")
        True
    """
    return hmac.new(secret, str(presession).encode(), hashlib.sha256).hexdigest() if presession else None


class LoginThrottle:
    """Refuses log-ins after `max_failures` failures within `window_s` for one user name from one client
    address, or four times as many from one address over all names (several users may share an
    address behind a proxy).

    Failures from one address never lock the account for another address, so
    nobody can lock a clinician out by failing on purpose; each try costs an
    argon2 hash, which bounds guessing from many addresses.

    Examples:
        >>> throttle = LoginThrottle(max_failures=2, window_s=60)
        >>> throttle.failed("1.2.3.4", "ana"); throttle.failed("1.2.3.4", "ana")
        >>> [throttle.retry_after(*who) > 0 for who in (("1.2.3.4", "ana"), ("5.6.7.8", "ana"), ("1.2.3.4", "bob"))]
        [True, False, False]
    """

    def __init__(self, max_failures=5, window_s=300.0):
        self.max_failures, self.window_s = max_failures, window_s
        self._failures = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key, now):
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, address, username):
        """Seconds until a log-in from `address` as `username` is allowed again (0: now)."""
        now = time.monotonic()
        with self._lock:
            limits = {("address", address): 4 * self.max_failures, ("user", address, username): self.max_failures}
            waits = [self._recent(key, now)[0] + self.window_s - now for key, limit in limits.items()
                     if len(self._recent(key, now)) >= limit]  # fmt: skip
        return max(waits, default=0.0)

    def failed(self, address, username):
        now = time.monotonic()
        with self._lock:
            for key in (("address", address), ("user", address, username)):
                self._recent(key, now).append(now)

    def succeeded(self, address, username):
        with self._lock:
            self._failures.pop(("user", address, username), None)
