# SPDX-License-Identifier: GPL-3.0-or-later
"""agent/fallback_dataclasses.py: the methods `dataclass` generates, precompiled
for the shims' in-process fallback (agent/fallback.py, fast_dataclasses).

The module must be current (scripts/gen_fallback_dataclasses.py), each of its
functions must be the same code as the text `dataclasses` would compile, and
the classes made through it must be the same classes: same signatures,
defaults, annotations, names, behaviour. Each check runs in a fresh
interpreter (a dataclass is made once, at import).
"""

import importlib.util
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CNI = os.path.join(ROOT, "plugins", "module_utils", "cni")
GEN = os.path.join(ROOT, "scripts", "gen_fallback_dataclasses.py")


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_fallback_dataclasses", GEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_cache():
    spec = importlib.util.spec_from_file_location("fallback_dataclasses", os.path.join(CNI, "agent", "fallback_dataclasses.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_module_is_current():
    gen = load_generator()
    with open(gen.TARGET) as f:
        current = f.read()
    assert current == gen.render(gen.record_texts()), "run scripts/gen_fallback_dataclasses.py (a dataclass changed)"


def test_each_function_is_the_code_of_its_text():
    gen = load_generator()
    cache = load_cache()
    assert cache.CACHE_TAG == sys.implementation.cache_tag
    assert len(cache.CODE) >= 60
    for text, code in cache.CODE.items():
        assert gen._code_fields(code) == gen._code_fields(gen.created_fn(text)), text
    # the comparison sees a difference (a default, a name, a constant)
    text = next(t for t in cache.CODE if "self.name=name" in t)
    assert not gen.same_code(text, text.replace("self.name=name", "self.name=name or name"))


# Every dataclass of the package, described by what a caller can see of it:
# fields, the signature, defaults and annotations of __init__, names, a
# repr and equality of instances made from defaults where it has them.
DESCRIBE = r"""
import dataclasses, importlib, importlib.util, inspect, json, os, pkgutil, sys
spec = importlib.util.spec_from_file_location("nodenet_cni", %(init)r, submodule_search_locations=[%(cni)r])
package = importlib.util.module_from_spec(spec)
sys.modules["nodenet_cni"] = package
spec.loader.exec_module(package)
compiled = []
if %(fast)r:
    from nodenet_cni.agent import fallback
    assert fallback.fast_dataclasses() is True
    assert fallback.fast_dataclasses() is False  # once
    real = dataclasses.exec
    def counting(source, globals=None, locals=None):
        real(source, globals, locals)
        if locals is not None and locals["__create_fn__"].__code__.co_filename == "<string>":
            compiled.append(source)
    dataclasses.exec = counting
names = ["nodenet_cni.spec", "nodenet_cni.skel", "nodenet_cni.invoke"]
for sub in ("config", "ipam", "net", "plugin"):
    names += ["nodenet_cni.%%s.%%s" %% (sub, m.name) for m in pkgutil.iter_modules([os.path.join(%(cni)r, sub)])]
out = {}
for name in sorted(names):
    module = importlib.import_module(name)
    for cls in vars(module).values():
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == name):
            continue
        init = cls.__init__
        fields = [(f.name, str(f.type), "MISSING" if f.default is dataclasses.MISSING else repr(f.default),
                   f.default_factory is not dataclasses.MISSING) for f in dataclasses.fields(cls)]
        methods = [(m, getattr(cls, m) and getattr(cls, m).__qualname__)
                   for m in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__") if m in vars(cls)]
        d = {"fields": fields, "sig": str(inspect.signature(init)), "defaults": repr(init.__defaults__),
             "annotations": repr(init.__annotations__), "names": methods, "module": init.__module__, "doc": cls.__doc__}
        try:
            a, b = cls(), cls()
            d["instance"] = [repr(a), a == b, a != b]
        except TypeError:
            pass
        out[cls.__module__ + "." + cls.__qualname__] = d
print(json.dumps({"classes": out, "compiled": len(compiled)}))
"""


def describe(fast: bool):
    code = DESCRIBE % {"init": os.path.join(CNI, "__init__.py"), "cni": CNI, "fast": fast}
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_the_classes_made_through_it_are_the_same():
    plain, fast = describe(False), describe(True)
    assert len(plain["classes"]) >= 19
    assert fast["classes"] == plain["classes"]
    # and the methods came from the module: only the one text it leaves out (too wide for pep8) was compiled
    assert fast["compiled"] <= 2, fast["compiled"]


def test_an_unknown_text_is_compiled_as_before():
    code = r"""
import importlib.util, sys, dataclasses
spec = importlib.util.spec_from_file_location("nodenet_cni", %r, submodule_search_locations=[%r])
package = importlib.util.module_from_spec(spec)
sys.modules["nodenet_cni"] = package
spec.loader.exec_module(package)
from nodenet_cni.agent import fallback
fallback.fast_dataclasses()
@dataclasses.dataclass
class Odd:
    '''Not one of ours.'''
    zz_one: int
    zz_two: str = "x"
print(repr(Odd(1)), Odd(1) == Odd(1), Odd.__init__.__code__.co_filename)
""" % (os.path.join(CNI, "__init__.py"), CNI)
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split() == ["Odd(zz_one=1,", "zz_two='x')", "True", "<string>"]
