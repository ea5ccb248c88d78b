"""Method registry: a new method is one module of this package with a Method subclass that has a `name`; it is
found here by importing every module, so no list of methods is written by hand anywhere."""
import importlib
import pkgutil

from .base import Method, Views


def _discover() -> dict[str, type[Method]]:
    found: dict[str, type[Method]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        # a module's namespace keeps definition order; imported classes are skipped (found in their own module)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Method) and obj.__module__ == module.__name__ and obj.name:
                if obj.name in found and found[obj.name] is not obj:
                    raise ValueError(f"two methods named {obj.name!r}: {found[obj.name].__qualname__} and "
                                     f"{obj.__qualname__} ({module.__name__})")
                found[obj.name] = obj
    # stable: methods with an `order` of their own first (the order every list has always had), then the others
    # by module and definition
    return {m.name: m for m in sorted(found.values(), key=lambda m: m.sort_key())}


METHODS: dict[str, type[Method]] = _discover()


def get_method(name: str) -> Method:
    try:
        return METHODS[name]()
    except KeyError:
        raise ValueError(f"unknown method {name!r}; valid choices: {', '.join(METHODS)}") from None


__all__ = ["Method", "Views", "METHODS", "get_method"]
