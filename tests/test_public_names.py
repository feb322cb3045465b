"""No public name of a package hides one of its modules (``jaxvision.ops.nms`` is the function, and the module
that defines it has another name), so ``import jaxvision.x.y`` and ``jaxvision.x.y`` always mean the same thing."""
import importlib
import pkgutil

import jaxvision


def _packages():
    yield jaxvision
    for info in pkgutil.walk_packages(jaxvision.__path__, "jaxvision."):
        if info.ispkg:
            yield importlib.import_module(info.name)


def test_no_attribute_shadows_a_module():
    bad = []
    for pkg in _packages():
        for info in pkgutil.iter_modules(pkg.__path__):
            full = f"{pkg.__name__}.{info.name}"
            module = importlib.import_module(full)
            attr = getattr(pkg, info.name, module)
            if attr is not module:
                bad.append(f"{full}: the package attribute is {type(attr).__name__} {attr!r}, not the module")
    assert not bad, "\n".join(bad)
