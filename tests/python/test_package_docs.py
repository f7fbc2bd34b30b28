"""Documentation of the litelens Python package, checked.

* Every ```python block of docs/python.md and of README.md runs, in order (one namespace per
  document), in a scratch folder holding the real models (scripts/fetch-models.sh).
* The shipped type stub (python/litelens/_litelens.pyi, installed with py.typed) is exactly what
  nanobind's stubgen produces from the installed module; regenerate with `make python-stub`.
* Every public name, method and property has a docstring.
"""
from __future__ import annotations

import contextlib
import glob
import inspect
import io
import os
import re
import subprocess
import sys

import pytest

import litelens

from locations import HERE, REPO, CACHE, MODEL_DIR  # noqa: E402
DOCS = [os.path.join(REPO, "docs", "python.md"), os.path.join(REPO, "README.md")]

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: str) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


@pytest.mark.parametrize("doc", DOCS, ids=[os.path.relpath(d, REPO) for d in DOCS])
def test_doc_examples_run(doc, tmp_path, monkeypatch):
    assert os.path.isfile(doc), doc
    blocks = python_blocks(doc)
    if doc.endswith("python.md"):
        assert len(blocks) >= 8, "docs/python.md lost its examples"
    elif not blocks:
        pytest.skip("README.md has no Python examples")
    models = glob.glob(os.path.join(MODEL_DIR, "*.tflite"))
    assert models, f"no models in {MODEL_DIR}: run scripts/fetch-models.sh"
    for m in models:
        os.symlink(m, tmp_path / os.path.basename(m))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_example__"}
    for line, code in blocks:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{os.path.basename(doc)}:{line}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - re-raised with the block's location
            raise AssertionError(f"{os.path.relpath(doc, REPO)} block at line {line} failed: {e!r}\n{code}") from e


def test_stub_matches_module(tmp_path):
    """The shipped .pyi is what stubgen makes of the module that is installed."""
    out = tmp_path / "_litelens.pyi"
    subprocess.run([sys.executable, "-m", "nanobind.stubgen", "-q", "-m", "litelens._litelens",
                    "-p", os.path.join(REPO, "python", "stubgen_patterns.txt"), "-o", str(out)],
                   check=True, cwd=tmp_path)
    generated = out.read_text()
    shipped_path = os.path.join(REPO, "python", "litelens", "_litelens.pyi")
    with open(shipped_path, encoding="utf-8") as f:
        shipped = f.read()
    assert generated == shipped, (
        "python/litelens/_litelens.pyi is out of date with the bindings: run `make python-stub` "
        "(after `make test-python-package` or `pip install .`)")
    installed = os.path.join(os.path.dirname(litelens.__file__), "_litelens.pyi")
    assert os.path.isfile(installed) and open(installed, encoding="utf-8").read() == shipped, \
        "the installed package is older than the sources: pip install ."
    assert os.path.isfile(os.path.join(os.path.dirname(litelens.__file__), "py.typed"))


def _public_members(cls):
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        yield name, value


# nanobind writes each overload's signature as the first line(s) of __doc__
# ("name(self, x: int) -> str"; "(self) -> str" for a property getter), then a blank line, so
# a function bound without a docstring still has a non-empty __doc__. Only the text after the
# signatures counts.
def _doc_text(doc: str | None, name: str) -> str:
    """The prose of a docstring: nanobind's leading block of signature lines removed."""
    lines = (doc or "").strip().splitlines()
    while lines:
        head = lines[0].strip()
        head = head[4:] if head.startswith("def ") else head
        if not (head.startswith(name + "(") or head.startswith("(")):
            break
        depth = 0  # a long signature may wrap: drop lines until its brackets close
        while lines:
            sig = lines.pop(0)
            depth += sig.count("(") + sig.count("[") - sig.count(")") - sig.count("]")
            if depth <= 0:
                break
        if lines and not lines[0].strip():
            break  # the blank line after the signatures: what follows is prose
    return "\n".join(lines).strip()


def _undocumented(module) -> list[str]:
    """Public names of ``module`` (its __all__) and of its classes that carry no prose."""
    missing = []
    for name in module.__all__:
        if name == "__version__":
            continue
        obj = getattr(module, name)
        if name == "Source":
            # a typing alias, documented by its #: comment in __init__.py (it cannot carry a
            # __doc__ of its own without changing typing's shared Union object)
            source = inspect.getsource(module) if hasattr(module, "__file__") else ""
            if source and "#: The type of what :func:`open` accepts" not in source:
                missing.append(name)
            continue
        if not _doc_text(inspect.getdoc(obj), name):
            missing.append(name)
        if inspect.isclass(obj) and obj is not module.Error:
            for member, value in _public_members(obj):
                doc = value.fget.__doc__ if isinstance(value, property) else getattr(value, "__doc__", None)
                if not _doc_text(doc, member):
                    missing.append(f"{name}.{member}")
    return missing


def test_every_public_name_is_documented():
    missing = _undocumented(litelens)
    assert not missing, f"public names without a docstring: {missing}"
    for attr in ("kind", "path", "offset", "message"):
        assert attr in litelens.Error.__doc__


def test_undocumented_names_are_caught():
    """The check above fails on a name that has only nanobind's generated signature."""
    native = litelens._litelens.Model.tensors
    assert native.__doc__.startswith("tensors(self"), native.__doc__  # nanobind puts it there
    assert _doc_text("tensors(self, subgraph: int = 0) -> list[Tensor]", "tensors") == ""
    assert _doc_text("layers(self, op: str | None = None,\n    name: str | None = None) -> list[Layer]\n",
                     "layers") == ""
    assert _doc_text("f(x: int) -> int\nf(x: str) -> str\n\nOverloaded.", "f") == "Overloaded."
    assert _doc_text("(self) -> list\n\n(key, reason) pairs.", "skipped") == "(key, reason) pairs."
    assert _doc_text(native.__doc__, "tensors").startswith("The tensors of a subgraph.")

    class Fake:
        """A fake package with one undocumented function, one undocumented method and one
        undocumented property (each carrying only a signature, as nanobind would)."""

        Error = litelens.Error
        __all__ = ["Good", "bare", "Holder", "Source"]
        Source = litelens.Source

        class Good:
            """Documented."""

        @staticmethod
        def bare():
            pass

        class Holder:
            """Documented class."""

            def method(self):
                pass

            @property
            def prop(self):
                return 1

    Fake.bare.__doc__ = "bare() -> None"
    Fake.Holder.method.__doc__ = "method(self) -> None"
    Fake.Holder.prop.fget.__doc__ = "(self) -> int"
    assert sorted(_undocumented(Fake)) == ["Holder.method", "Holder.prop", "bare"]


def test_package_exports_the_native_names():
    import litelens._litelens as native

    public = {n for n in dir(native) if not n.startswith("_")}
    assert public <= set(litelens.__all__), public - set(litelens.__all__)
    assert litelens.__version__ == "0.1.0"


def test_dir_lists_only_the_api():
    """``dir(litelens)`` is the API: no typing names, numpy or os that the package imports."""
    listed = dir(litelens)
    assert listed == sorted(litelens.__all__)
    assert not {"Any", "Optional", "np", "os"} & set(listed)


def test_one_version_everywhere():
    """The VERSION file, the package metadata, __version__ and the command agree."""
    import importlib.metadata

    with open(os.path.join(REPO, "VERSION")) as f:
        version = f.read().strip()
    assert litelens.__version__ == version
    assert importlib.metadata.version("litelens") == version
    import sysconfig

    cli = os.path.join(sysconfig.get_path("scripts"), "litelens")
    out = subprocess.run([cli, "--version"], check=True, capture_output=True, text=True).stdout
    assert out == f"litelens {version}\n"
