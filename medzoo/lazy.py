"""Package attributes that import their module on first use (PEP 562)."""

import importlib


def lazy_attributes(package, sources):
    """Returns a module `__getattr__` serving `sources` {name: submodule} from `package`.

    Examples:
        >>> getattr_ = lazy_attributes("medzoo", {"InputError": "errors"})
        >>> getattr_("InputError").__name__
        'InputError'
    """

    def __getattr__(name):
        if name in sources:
            return getattr(importlib.import_module(f"{package}.{sources[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
