"""Metadata entries and associated files through the litelens CLI, checked against independent
readers and writers: the PyPI `tflite` package for the metadata buffers of the real models,
TensorFlow's own reader of CONVERSION_METADATA for the converter-made fixtures (its findings are
written beside each fixture by scripts/make-fixtures.py, so TensorFlow is not needed here), and
Python's own `zipfile` for archives appended to real models (append mode is exactly how TFLite
Support's populator attaches associated files).

Setup:  scripts/fetch-models.sh   (fills ${LITELENS_CACHE:-~/.cache/litelens}/models)
        scripts/make-fixtures.py  (fills ${LITELENS_CACHE:-~/.cache/litelens}/fixtures)
        pip install tflite pytest
Env:    LITELENS_CACHE  model cache root (models/ below it)
        LITELENS_CLI    litelens binary (default: <repo>/build/tools/litelens/litelens)

An empty model directory is a failure, not a skip.
"""
from __future__ import annotations

import glob
import io
import json
import os
import shutil
import subprocess
import zipfile

import pytest

from locations import HERE, REPO, CACHE, MODEL_DIR, MODELS, CLI, FIXTURE_DIR  # noqa: E402
import cli_runner  # noqa: E402
import oracles  # noqa: E402

# The three smallest models carry the appended-archive checks (the archive code does not care
# what the model holds).
SMALL = sorted(MODELS, key=os.path.getsize)[:3]

LABELS = b"sparrow\nrobin\nwren\nfinch\nowl\n"
VOCAB = ("\n".join(f"token{i}" for i in range(2000)) + "\n").encode()


def _ids(paths):
    return [os.path.basename(p)[: -len(".tflite")] for p in paths]


def _cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    return cli_runner.run_cli(*args, ok=ok)


def _json(*args: str) -> dict:
    return json.loads(_cli(*args).stdout)


def test_model_cache_not_empty():
    assert MODELS, f"no .tflite models in {MODEL_DIR}: run scripts/fetch-models.sh (or set LITELENS_CACHE)"


@pytest.mark.parametrize("model", MODELS, ids=_ids(MODELS))
def test_real_model_metadata_matches_tflite_package(model):
    entries = oracles.metadata_entries(model)
    meta = _json("info", model, "--json")["model_metadata"]
    assert meta["errors"] == []
    if "min_runtime_version" in entries:
        raw = entries["min_runtime_version"]
        assert meta["min_runtime_version"] == raw.split(b"\0", 1)[0].decode()
        assert meta["min_runtime_version_terminated"] == (b"\0" in raw)
    else:
        assert meta["min_runtime_version"] is None
    if "reduced_precision_support" in entries:
        assert meta["reduced_precision_support"] == entries["reduced_precision_support"].rstrip(b"\0").decode()
    else:
        assert meta["reduced_precision_support"] is None
    assert (meta["tflite_metadata"] is not None) == ("TFLITE_METADATA" in entries)
    assert (meta["conversion_metadata"] is not None) == ("CONVERSION_METADATA" in entries)
    # Python's zipfile is the oracle for "is there an archive at all".
    assert meta["associated_files"] == [] or zipfile.is_zipfile(model)
    if not zipfile.is_zipfile(model):
        assert _json("files", model, "--json")["associated_files"] == []


def _append(path: str, members: list[tuple[str, bytes, int]], force_zip64: bool = False) -> None:
    """Appends an archive the way TFLite Support's populator does: zipfile in append mode."""
    with zipfile.ZipFile(path, "a") as z:
        for name, data, method in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
            info.compress_type = method
            with z.open(info, "w", force_zip64=force_zip64) as f:
                f.write(data)


def _check_against_zipfile(path: str, tmp_path) -> None:
    with zipfile.ZipFile(path) as z:
        expected = {i.filename: (i.file_size, i.compress_size, i.CRC, i.compress_type) for i in z.infolist()}
        contents = {i.filename: z.read(i) for i in z.infolist()}
    listed = _json("files", path, "--json")["associated_files"]
    got = {f["name"]: (f["size"], f["compressed_size"], int(f["crc32"], 16),
                       {"stored": zipfile.ZIP_STORED, "deflate": zipfile.ZIP_DEFLATED}[f["compression"]])
           for f in listed}
    assert got == expected
    out = tmp_path / "extracted"
    _cli("files", path, "--extract", str(out))
    for name, data in contents.items():
        assert (out / name).read_bytes() == data, name
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(contents)


@pytest.mark.parametrize("model", SMALL, ids=_ids(SMALL))
@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflate"])
@pytest.mark.parametrize("zip64", [False, True], ids=["zip32", "zip64"])
def test_zipfile_appended_archive(model, method, zip64, tmp_path):
    path = str(tmp_path / os.path.basename(model))
    shutil.copyfile(model, path)
    _append(path, [("labels.txt", LABELS, method), ("vocab/words.txt", VOCAB, method)], force_zip64=zip64)
    before = _json("info", model, "--json")
    after = _json("info", path, "--json")
    # The model part is untouched; the archive is seen after it.
    assert after["flatbuffer_size"] == before["flatbuffer_size"]
    assert after["file_size"] > before["file_size"]
    assert after["tensors"] == before["tensors"]
    assert [f["name"] for f in after["model_metadata"]["associated_files"]] == ["labels.txt", "vocab/words.txt"]
    _check_against_zipfile(path, tmp_path)


@pytest.mark.parametrize("model", SMALL[:1], ids=_ids(SMALL[:1]))
def test_concatenated_archive_with_relative_offsets(model, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("labels.txt", LABELS)
        z.writestr("notes/readme.md", b"# notes\n", compress_type=zipfile.ZIP_DEFLATED)
    path = tmp_path / "concatenated.tflite"
    path.write_bytes(open(model, "rb").read() + buf.getvalue())
    _check_against_zipfile(str(path), tmp_path)


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "dir\\..\\escape.txt"])
def test_hostile_names_are_refused(name, tmp_path):
    assert SMALL, "no models"
    path = str(tmp_path / "hostile.tflite")
    shutil.copyfile(SMALL[0], path)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(zipfile.ZipInfo("fine.txt"), b"fine")
        info = zipfile.ZipInfo("placeholder")
        info.filename = name  # bypass zipfile's own clean-up of the name
        z.writestr(info, b"escape")
    out = tmp_path / "out" / "inner"
    p = _cli("files", path, "--extract", str(out), ok=False)
    assert p.returncode == 1
    assert b"[invalid_metadata]" in p.stderr
    assert b"unsafe name" in p.stderr
    assert not any((tmp_path / "out").rglob("*escape*")) and not (out / "fine.txt").exists()
    info = _cli("info", path)
    assert info.returncode == 0 and b"warning" in info.stderr


# ---- Converter-made fixtures: CONVERSION_METADATA against TensorFlow's own reader --------------

def _fixture_models() -> list[dict]:
    path = os.path.join(FIXTURE_DIR, "manifest.json")
    if not os.path.isfile(path):
        pytest.fail(f"no fixtures in {FIXTURE_DIR}: run `make fixtures` (scripts/make-fixtures.py)")
    with open(path) as f:
        return json.load(f)["models"]


def _fixture_ids() -> list[str]:
    # Collected before the test runs: a missing manifest gives one test that fails, not none.
    path = os.path.join(FIXTURE_DIR, "manifest.json")
    if not os.path.isfile(path):
        return ["missing-manifest"]
    with open(path) as f:
        return [m["file"][: -len(".tflite")] for m in json.load(f)["models"]]


def test_every_fixture_has_a_conversion_sidecar():
    models = _fixture_models()
    assert len(models) >= 10
    for m in models:
        assert "conversion_metadata" in m, (
            f"{m['file']}: no conversion sidecar in the fixture manifest: rebuild with scripts/make-fixtures.py --force")
        assert os.path.isfile(os.path.join(FIXTURE_DIR, m["conversion_metadata"])), m["conversion_metadata"]


# The optimization modes the converter records for each quantization mode of make-fixtures.py.
EXPECTED_MODES = {"float32": [], "fp16": ["PTQ_FLOAT16"], "dynamic": ["PTQ_DYNAMIC_RANGE"],
                  "int8": ["PTQ_FULL_INTEGER"], "int16x8": ["PTQ_INT16"]}


@pytest.mark.parametrize("stem", _fixture_ids())
def test_fixture_conversion_metadata_matches_tensorflow(stem):
    entry = next((m for m in _fixture_models() if m["file"] == stem + ".tflite"), None)
    assert entry is not None, f"{stem} is not in the fixture manifest"
    sidecar_path = os.path.join(FIXTURE_DIR, entry.get("conversion_metadata", stem + ".conversion.json"))
    assert os.path.isfile(sidecar_path), f"{sidecar_path} is missing: rebuild with scripts/make-fixtures.py --force"
    with open(sidecar_path) as f:
        expected = json.load(f)
    assert expected is not None, f"TensorFlow found no CONVERSION_METADATA in {stem}"
    model = os.path.join(FIXTURE_DIR, entry["file"])

    meta = _json("info", model, "--json")["model_metadata"]
    assert meta["errors"] == []
    got = meta["conversion_metadata"]
    env, want_env = got.get("environment"), expected["environment"]
    assert (env is None) == (want_env is None)
    if want_env is not None:
        assert env == {k: want_env[k] for k in ("tensorflow_version", "api_version", "model_type", "model_hash")}
        assert env["model_type"] == "KERAS_MODEL"  # make-fixtures.py converts Keras models
    opt, want_opt = got.get("options"), expected["options"]
    assert (opt is None) == (want_opt is None)
    if want_opt is not None:
        assert opt == {k: want_opt[k] for k in ("model_optimization_modes", "allow_custom_ops", "enable_select_tf_ops",
                                                "force_select_tf_ops", "sparsity_block_sizes")}
        assert opt["model_optimization_modes"] == EXPECTED_MODES[entry["mode"]]
    # The converter writes no TFLITE_METADATA and no archive.
    assert meta["tflite_metadata"] is None and meta["associated_files"] == []

    # The table shows the same facts on its CONVERSION_METADATA lines.
    text = _cli("info", model).stdout.decode()
    if want_env is not None:
        assert (f"  {'CONVERSION_METADATA':<26} tensorflow {want_env['tensorflow_version']}, api {want_env['api_version']}, "
                f"from {want_env['model_type']}, hash {want_env['model_hash']:016x}\n") in text, text
    if want_opt is not None:
        assert f"optimizations [{', '.join(want_opt['model_optimization_modes'])}]" in text, text
