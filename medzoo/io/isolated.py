"""Decoders that can crash run in a worker process: a segfault fails one file, not the batch or the server.

OpenCV's FFmpeg backend and the compressed-DICOM codecs are C code fed with
untrusted bytes: a hand-made raw AVI aborts OpenCV with "malloc_consolidate():
invalid chunk size", which once took `prepare-video` down with the rest of its
batch. `isolated(function, path, ...)` runs a module-level reader in a worker
(`python -m medzoo.io.isolated`; requests and answers are pickled over its
pipes). Each worker decodes one file and exits: that AVI corrupts the heap
without crashing at once, and the next file in the same process then died
(SIGSEGV), so a reused worker would blame the wrong file. A warm spare (its
codecs already imported) is started while a call runs, so the cost per file is
about one process start, not an import of OpenCV. A call whose worker dies is
retried once in a fresh one; a file that kills a fresh worker too raises
`InputError` naming it and the signal. At most `set_workers(n)` decodes run at
once (default: one per CPU core; the service sets its `--decode-workers`),
which also bounds their memory.

Examples:
    >>> from medzoo.io.video import read_video
    >>> from medzoo.data.samples import sample_video_path
    >>> frames, fps, total = isolated(read_video, sample_video_path(), [0])
    >>> frames.shape, total
    ((1, 144, 176, 3), 120)
"""

import atexit
import importlib
import io
import os
import pickle
import subprocess
import sys
import threading

from medzoo.errors import InputError
from medzoo.io.limits import current_limits, set_limits

IN_WORKER = "MEDZOO_DECODE_WORKER"
WARM_MODULES = ("medzoo.io.dicom", "medzoo.io.video", "medzoo.data.recipe")  # what a worker imports while it waits
_DEFAULT_WORKERS = os.cpu_count() or 1
_state = {"workers": _DEFAULT_WORKERS, "idle": [], "slots": threading.BoundedSemaphore(_DEFAULT_WORKERS)}
_lock = threading.Lock()


def set_workers(count):
    """Sets how many decodes may run at once, each in its own worker; returns the previous count."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"decode workers must be an integer >= 1, got {count!r}.")
    with _lock:
        previous = _state["workers"]
        _state.update(workers=count, slots=threading.BoundedSemaphore(count))
    shutdown()
    return previous


def isolated(function, path, *args, **kwargs):
    """`function(path, *args, **kwargs)` in a worker process; a crash is an InputError naming `path`.

    In a worker, or with MEDZOO_DECODE_IN_PROCESS=1 (for debugging), it is a plain call.
    """
    if os.environ.get(IN_WORKER) == "1" or os.environ.get("MEDZOO_DECODE_IN_PROCESS") == "1":
        return function(path, *args, **kwargs)
    request = (current_limits(), function.__module__, function.__qualname__, path, args, kwargs)
    with _state["slots"]:
        for attempt in (1, 2):
            worker = _take_worker()
            try:
                status, value = worker.call(request)  # one file per process: what a codec leaves goes with it
            except _WorkerDied as died:
                if attempt == 2:
                    raise InputError(f"{path}: the decoder crashed on this file ({died}); the file is damaged "
                                     "or hostile.") from None  # fmt: skip
                continue
            if status == "error":
                raise value
            return value


def shutdown():
    """Stops the warm spares (new ones start on the next call)."""
    with _lock:
        idle, _state["idle"] = _state["idle"], []
    for worker in idle:
        worker.close()


atexit.register(shutdown)


class _WorkerDied(Exception):
    pass


class _Worker:
    """One `python -m medzoo.io.isolated` process and its two pipes."""

    def __init__(self):
        environment = {**os.environ, IN_WORKER: "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "medzoo.io.isolated"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=environment)  # fmt: skip

    def call(self, request):
        """The answer to one request; the worker then exits, and must exit cleanly for the answer to count.

        A codec that corrupted the heap may still answer, then abort on the way out
        ("malloc_consolidate(): invalid chunk size"): that answer is not trusted.
        """
        try:
            _send(self.process.stdin, request)
            answer = _receive(self.process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            answer = None
        code = self.close()
        if answer is None or code != 0:
            described = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            raise _WorkerDied(f"its worker process died: {described}")
        return answer

    def close(self):
        """Ends the worker (its input closes, so its loop ends); returns its exit status."""
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _take_worker():
    """A warm spare if one is ready (a new spare starts warming at once), else a new worker."""
    with _lock:
        worker = _state["idle"].pop() if _state["idle"] else None
        _state["idle"].append(_Worker())
    return worker or _Worker()


def _send(stream, value):
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _receive(stream):
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError
    size = int.from_bytes(header, "little")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return _Messages(io.BytesIO(data)).load()


class _Messages(pickle.Unpickler):
    """Unpickles requests and answers: containers, numbers, strings, numpy arrays and medzoo's errors only.

    The worker has just read hostile bytes, so its answer is not trusted to
    name any other class or function.
    """

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("numpy._core.numeric", "_frombuffer"),
               ("numpy.core.numeric", "_frombuffer"), ("medzoo.errors", "InputError"), ("builtins", "RuntimeError"),
               ("builtins", "ValueError"), ("builtins", "OSError"), ("builtins", "set"), ("builtins", "frozenset"),
               ("collections", "OrderedDict")}  # fmt: skip

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED and not (module.startswith("numpy") and name.startswith("dtype")):
            raise pickle.UnpicklingError(f"a decode worker's message may not name {module}.{name}")
        return super().find_class(module, name)


def _serve(requests, answers):
    """The worker's one request (limits, module, function, path, args, kwargs) in, (status, value) out."""
    try:
        limits, module, name, path, args, kwargs = _receive(requests)
    except EOFError:  # a warm spare given back unused
        return
    try:
        set_limits(**limits)
        function = importlib.import_module(module)
        for part in name.split("."):
            function = getattr(function, part)
        answer = ("ok", function(path, *args, **kwargs))
    except Exception as error:  # handed back to the caller, who raises it, as a type _Messages accepts
        answer = ("error", _portable(error))
    try:
        _send(answers, answer)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        _send(answers, ("error", RuntimeError(f"{path}: {type(error).__name__}: {error}")))


def _portable(error):
    """`error` as InputError, ValueError, OSError or RuntimeError, with its message (what the caller may unpickle)."""
    for kind in (InputError, ValueError, OSError):
        if isinstance(error, kind):
            return error if type(error) is kind else kind(str(error))
    return RuntimeError(f"{type(error).__name__}: {error}")


if __name__ == "__main__":
    answers = os.fdopen(os.dup(1), "wb")  # the answers' pipe; anything a codec prints goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for module in WARM_MODULES:  # by name, as requests name theirs: the codecs load before a request arrives
        importlib.import_module(module)

    _serve(sys.stdin.buffer, answers)
