"""The on-disk cache of ``lambdify(backend="numba")``.

Numba caches a compiled function (``njit(cache=True)``) only when it is
defined in a real file, so the generated module is written to the cache
directory under a name that hashes its source and the versions of Python,
NumPy and Numba, and imported from there; Numba keeps the compiled kernels
beside it in ``__pycache__``. A second process that lambdifies the same cell
finds both and reaches its first gradient without compiling.

The directory is ``$SYMRNN_CACHE_DIR`` when that is set (an empty value turns
the cache off), else ``$XDG_CACHE_HOME/symrnn`` or ``~/.cache/symrnn``. Where
it cannot be written, ``load`` returns None and the module runs without a
cache, compiled in every process. Deleting the directory clears the cache; a
damaged file in it is a miss (runtime_numba.py), rebuilt on the next call.
"""
import hashlib
import importlib.util
import os
import sys
import tempfile

ENVIRONMENT = "SYMRNN_CACHE_DIR"


def directory():
    """The cache directory, or None when ``$SYMRNN_CACHE_DIR`` is set empty."""
    chosen = os.environ.get(ENVIRONMENT)
    if chosen is not None:
        return chosen or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "symrnn")


def module_name(source):
    """``symrnn_<hash>``: the same for the same source and versions, an
    identifier (an importable module name)."""
    import numba
    import numpy
    text = "\0".join([source, numba.__version__, numpy.__version__, sys.version])
    return "symrnn_" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _holds(path, source):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == source
    except (OSError, UnicodeDecodeError):
        return False


def _write(path, source):
    """Write ``source`` to ``path`` atomically: a reader sees the old file or the
    whole new one, never a part."""
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".symrnn-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(source)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def place(source):
    """The path of the module file holding ``source`` in the cache directory
    (written if missing or different), or None when there is no writable cache."""
    folder = directory()
    if folder is None:
        return None
    path = os.path.join(folder, module_name(source) + ".py")
    try:
        os.makedirs(os.path.join(folder, "__pycache__"), exist_ok=True)
        if not os.access(os.path.join(folder, "__pycache__"), os.W_OK | os.X_OK):
            return None
        if not _holds(path, source):
            _write(path, source)
    except OSError:
        return None
    return path


def load(source):
    """The namespace of the generated module ``source`` imported from its file in
    the cache directory, or None when there is no writable cache directory."""
    path = place(source)
    if path is None:
        return None
    name = module_name(source)
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == path:
        return vars(sys.modules[name])  # lambdified before in this process
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Numba finds the module of a cached function by its name
    try:
        # compiled from the source, which the file holds: no bytecode file
        # (__pycache__/*.pyc) is read, so that none can be found damaged
        exec(compile(source, path, "exec"), vars(module))
    except BaseException:
        del sys.modules[name]
        raise
    return vars(module)
