"""Metadata and associated files through the litelens Python package, mirroring the C++ API.

A model made here by tests/python/model_builder.py carries a TFLITE_METADATA entry written
field by field with the `flatbuffers` package (following schema/metadata.fbs, no litelens code
involved) and a ZIP archive appended with Python's `zipfile` (as TFLite Support's populator
does). The tests check that:

* read_model_metadata() decodes every field written (names, descriptions, versions, associated
  files, content, process units, stats, tensor groups, custom metadata);
* associated_files lists the archive's members with the offsets zipfile reports
  (header_offset: the local header; offset: the data);
* extract_associated_files(dir) writes every member and returns the paths; a hostile archive
  raises litelens.Error (kind "invalid_metadata") and writes nothing.
"""
from __future__ import annotations

import io
import json
import os
import pathlib
import struct
import sys
import zipfile

import numpy as np
import pytest

import litelens

from locations import HERE, FIXTURE_DIR  # noqa: E402
sys.path.insert(0, HERE)

from model_builder import FLOAT32, ModelBuilder  # noqa: E402

LABELS = b"sparrow\nrobin\nwren\n"
VOCAB = ("\n".join(f"token{i}" for i in range(500)) + "\n").encode()
CUSTOM = bytes(range(7))


# ---------------------------------------------------------------- a TFLITE_METADATA writer

def _metadata_flatbuffer() -> bytes:
    """A ModelMetadata table (file identifier "M001") using most of schema/metadata.fbs."""
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def string(s: str) -> int:
        return b.CreateString(s)

    def table(fields: list[tuple[str, int, object]]) -> int:
        """fields: (kind, slot, value) with kind "off" (offset), "u8", "u32", "i32"."""
        b.StartObject(max((slot for _, slot, _ in fields), default=-1) + 1)
        for kind, slot, value in fields:
            if kind == "off":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "u8":
                b.PrependUint8Slot(slot, value, 0)
            elif kind == "u32":
                b.PrependUint32Slot(slot, value, 0)
            elif kind == "i32":
                b.PrependInt32Slot(slot, value, 0)
        return b.EndObject()

    def offsets(items: list[int]) -> int:
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    def floats(values: list[float]) -> int:
        return b.CreateNumpyVector(np.asarray(values, np.float32))

    def associated_file(name: str, description: str, ftype: int, locale: str = "") -> int:
        n, d = string(name), string(description)
        loc = string(locale) if locale else 0
        fields = [("off", 0, n), ("off", 1, d), ("u8", 2, ftype)]
        if loc:
            fields.append(("off", 3, loc))
        return table(fields)

    # input tensor: an RGB image 224x160, normalized, with stats
    image_size = table([("u32", 0, 224), ("u32", 1, 160)])
    image_props = table([("u8", 0, 1), ("off", 1, image_size)])                 # RGB
    image_content = table([("u8", 0, 2), ("off", 1, image_props)])              # ImageProperties
    norm = table([("off", 0, floats([127.5, 127.0, 126.5])), ("off", 1, floats([128.0, 64.0, 32.0]))])
    norm_unit = table([("u8", 0, 1), ("off", 1, norm)])                         # NormalizationOptions
    stats = table([("off", 0, floats([1.0])), ("off", 1, floats([-1.0]))])
    dims = offsets([string("batch"), string("height"), string("width"), string("channel")])
    image = table([("off", 0, string("image")), ("off", 1, string("the picture")), ("off", 2, dims),
                   ("off", 3, image_content), ("off", 4, offsets([norm_unit])), ("off", 5, stats)])
    # output tensor: class scores with the labels file, over dimension 1
    value_range = table([("i32", 0, 1), ("i32", 1, 1)])
    feature = table([])
    scores_content = table([("u8", 0, 1), ("off", 1, feature), ("off", 2, value_range)])
    labels_for_scores = associated_file("labels.txt", "bird names", 2, "en")     # TENSOR_AXIS_LABELS
    scores = table([("off", 0, string("scores")), ("off", 1, string("probabilities")),
                    ("off", 3, scores_content), ("off", 6, offsets([labels_for_scores]))])
    group = table([("off", 0, string("pictures")), ("off", 1, offsets([string("image")]))])
    custom_data = b.CreateByteVector(CUSTOM)
    custom = table([("off", 0, string("litelens.custom")), ("off", 1, custom_data)])
    subgraph = table([("off", 0, string("main")), ("off", 1, string("classifies birds")),
                      ("off", 2, offsets([image])), ("off", 3, offsets([scores])),
                      ("off", 7, offsets([group])), ("off", 9, offsets([custom]))])
    vocab = associated_file("vocab/words.txt", "a vocabulary", 5)                 # VOCABULARY
    root = table([("off", 0, string("bird classifier")), ("off", 1, string("a tiny test model")),
                  ("off", 2, string("v7")), ("off", 3, offsets([subgraph])), ("off", 4, string("litelens")),
                  ("off", 5, string("Apache-2.0")), ("off", 6, offsets([vocab])),
                  ("off", 7, string("1.5.0"))])
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def _model_bytes() -> bytes:
    """A one-op model (x + c) with the TFLITE_METADATA entry above."""
    mb = ModelBuilder("metadata test model")
    x = mb.tensor("image", FLOAT32, [1, 2])
    c = mb.const("c", np.array([[1.0, 2.0]], np.float32))
    y = mb.tensor("scores", FLOAT32, [1, 2])
    mb.op("ADD", [x, c], [y], options=("AddOptions", {}))
    mb.io([x], [y])
    mb.metadata("TFLITE_METADATA", _metadata_flatbuffer())
    mb.metadata("min_runtime_version", b"1.5.0\0")
    return mb.build()


@pytest.fixture()
def labelled(tmp_path) -> pathlib.Path:
    """The model with labels.txt (stored) and vocab/words.txt (deflated) appended as a ZIP."""
    path = tmp_path / "labelled.tflite"
    path.write_bytes(_model_bytes())
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("labels.txt", LABELS, compress_type=zipfile.ZIP_STORED)
        z.writestr("vocab/words.txt", VOCAB, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _files(folder: pathlib.Path) -> list[str]:
    """Relative paths of the files under `folder` (none when it does not exist)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------- tests

def test_full_metadata_is_decoded(labelled):
    model = litelens.open(labelled)
    assert model.metadata["TFLITE_METADATA"] == _metadata_flatbuffer()
    assert model.min_runtime_version == "1.5.0"
    info = model.read_model_metadata()
    assert (info.name, info.description, info.version, info.author, info.license, info.min_parser_version) == \
        ("bird classifier", "a tiny test model", "v7", "litelens", "Apache-2.0", "1.5.0")
    (vocab,) = info.associated_files
    assert (vocab.name, vocab.description, vocab.type, vocab.type_name, vocab.locale) == \
        ("vocab/words.txt", "a vocabulary", 5, "VOCABULARY", "")
    (sg,) = info.subgraphs
    assert (sg.name, sg.description) == ("main", "classifies birds")
    (image,) = sg.inputs
    assert (image.name, image.description) == ("image", "the picture")
    assert image.dimension_names == ["batch", "height", "width", "channel"]
    c = image.content
    assert (c.kind, c.kind_code, c.color_space, c.default_width, c.default_height, c.range) == \
        ("image", 2, "RGB", 224, 160, None)
    (unit,) = image.process_units
    assert (unit.kind, unit.kind_code) == ("normalization", 1)
    assert unit.mean == [127.5, 127.0, 126.5] and unit.std == [128.0, 64.0, 32.0]
    assert (image.stats_max, image.stats_min) == ([1.0], [-1.0])
    (scores,) = sg.outputs
    assert (scores.name, scores.content.kind, scores.content.range) == ("scores", "feature", (1, 1))
    (labels,) = scores.associated_files
    assert (labels.name, labels.description, labels.type_name, labels.locale) == \
        ("labels.txt", "bird names", "TENSOR_AXIS_LABELS", "en")
    (group,) = sg.input_tensor_groups
    assert (group.name, group.tensor_names) == ("pictures", ["image"])
    (custom,) = sg.custom_metadata
    assert (custom.name, custom.data) == ("litelens.custom", CUSTOM)
    assert [f.name for f in info.all_associated_files()] == ["vocab/words.txt", "labels.txt"]
    assert model.read_conversion_metadata() is None


def test_associated_files_match_zipfile(labelled):
    model = litelens.open(labelled)
    data = labelled.read_bytes()
    with zipfile.ZipFile(labelled) as z:
        infos = z.infolist()
    files = model.associated_files
    assert [f.name for f in files] == [i.filename for i in infos] == ["labels.txt", "vocab/words.txt"]
    # zipfile reports header offsets from the file's start (it adds the model in front of the
    # archive back); the first member's header sits right after the model
    assert files[0].header_offset == len(_model_bytes())
    for f, i in zip(files, infos):
        assert f.header_offset == i.header_offset, f.name
        assert data[f.header_offset: f.header_offset + 4] == b"PK\x03\x04"
        name_len, extra_len = struct.unpack_from("<HH", data, f.header_offset + 26)
        assert f.offset == f.header_offset + 30 + name_len + extra_len, f.name
        assert (f.size, f.compressed_size, f.crc32, f.compression) == \
            (i.file_size, i.compress_size, i.CRC, i.compress_type), f.name
    assert files[0].compression_name == "stored" and files[1].compression_name == "deflate"
    assert data[files[0].offset: files[0].offset + files[0].size] == LABELS
    assert model.read_associated_file("vocab/words.txt") == VOCAB


def test_extract_associated_files(labelled, tmp_path):
    model = litelens.open(labelled)
    out = tmp_path / "out" / "files"
    written = model.extract_associated_files(out)
    assert all(isinstance(p, pathlib.Path) for p in written)
    assert [p.relative_to(out).as_posix() for p in written] == ["labels.txt", "vocab/words.txt"]
    assert (out / "labels.txt").read_bytes() == LABELS
    assert (out / "vocab" / "words.txt").read_bytes() == VOCAB
    assert _files(out) == ["labels.txt", "vocab/words.txt"]  # no temporary files left
    # again into the same folder: overwritten in place, same answer; str paths work too
    assert model.extract_associated_files(str(out)) == written
    # a model without an archive writes nothing
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(_model_bytes())
    assert litelens.open(plain).extract_associated_files(tmp_path / "none") == []
    assert _files(tmp_path / "none") == []


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "dir\\..\\escape.txt"])
def test_hostile_archive_raises_and_writes_nothing(name, tmp_path):
    path = tmp_path / "hostile.tflite"
    path.write_bytes(_model_bytes())
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(zipfile.ZipInfo("fine.txt"), b"fine")
        info = zipfile.ZipInfo("placeholder")
        info.filename = name  # bypass zipfile's own clean-up of the name
        z.writestr(info, b"escape")
    model = litelens.open(path)  # the model itself is fine: the archive is checked when used
    out = tmp_path / "out" / "inner"
    for use in (lambda: model.associated_files, lambda: model.extract_associated_files(out),
                lambda: model.read_associated_file("fine.txt")):
        with pytest.raises(litelens.Error) as e:
            use()
        assert e.value.kind == "invalid_metadata" and e.value.path == str(path)
        assert "unsafe name" in str(e.value)
    assert _files(tmp_path / "out") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.tflite", "out"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["hostile.tflite"]


def test_corrupt_member_raises_and_writes_nothing(labelled, tmp_path):
    """A CRC mismatch in the second member: nothing appears, not even the first (good) member."""
    data = bytearray(labelled.read_bytes())
    model = litelens.open(labelled)
    vocab = model.associated_files[1]
    data[vocab.offset + 5] ^= 0xFF  # inside the deflate stream
    bad = tmp_path / "corrupt.tflite"
    bad.write_bytes(bytes(data))
    out = tmp_path / "corrupt_out"
    broken = litelens.open(bad)
    with pytest.raises(litelens.Error) as e:
        broken.extract_associated_files(out)
    assert e.value.kind == "invalid_metadata"
    assert _files(out) == []
    assert broken.read_associated_file("labels.txt") == LABELS  # the intact member still reads


def test_output_error_kind(labelled, tmp_path):
    """Writing under a regular file fails with kind "output" and leaves nothing."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"x")
    with pytest.raises(litelens.Error) as e:
        litelens.open(labelled).extract_associated_files(blocker / "sub")
    assert e.value.kind == "output"
    assert blocker.read_bytes() == b"x"


def test_fixture_conversion_metadata_through_the_library():
    """The library's CONVERSION_METADATA reader agrees with TensorFlow's on every converter
    fixture (the sidecars scripts/make-fixtures.py writes with TensorFlow's own reader)."""
    manifest = os.path.join(FIXTURE_DIR, "manifest.json")
    assert os.path.isfile(manifest), f"no fixtures in {FIXTURE_DIR}: run `make fixtures`"
    with open(manifest) as f:
        fixtures = json.load(f)["models"]
    assert fixtures
    for entry in fixtures:
        with open(os.path.join(FIXTURE_DIR, entry["conversion_metadata"])) as f:
            expected = json.load(f)
        with litelens.open(os.path.join(FIXTURE_DIR, entry["file"])) as model:
            info = model.read_conversion_metadata()
        env, opt = expected["environment"], expected["options"]
        assert info is not None, entry["file"]
        assert (info.has_environment, info.has_options) == (env is not None, opt is not None), entry["file"]
        assert (info.tensorflow_version, info.api_version, info.model_type, info.model_hash) == (
            env["tensorflow_version"], env["api_version"], env["model_type"], env["model_hash"]), entry["file"]
        assert list(info.optimization_modes) == opt["model_optimization_modes"], entry["file"]
        assert (info.allow_custom_ops, info.enable_select_tf_ops, info.force_select_tf_ops) == (
            opt["allow_custom_ops"], opt["enable_select_tf_ops"], opt["force_select_tf_ops"]), entry["file"]
        assert [list(b) for b in info.sparsity_block_sizes] == opt["sparsity_block_sizes"], entry["file"]
