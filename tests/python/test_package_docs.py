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


def test_every_public_name_is_documented():
    missing = []
    for name in litelens.__all__:
        if name in ("__version__", "Source"):
            continue
        obj = getattr(litelens, name)
        if not (inspect.getdoc(obj) or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and obj is not litelens.Error:
            for member, value in _public_members(obj):
                doc = value.fget.__doc__ if isinstance(value, property) else getattr(value, "__doc__", None)
                if not (doc or "").strip():
                    missing.append(f"{name}.{member}")
    assert not missing, f"public names without a docstring: {missing}"
    for attr in ("kind", "path", "offset", "message"):
        assert attr in litelens.Error.__doc__


def test_package_exports_the_native_names():
    import litelens._litelens as native

    public = {n for n in dir(native) if not n.startswith("_")}
    assert public <= set(litelens.__all__), public - set(litelens.__all__)
    assert litelens.__version__ == "0.1.0"
