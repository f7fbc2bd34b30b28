"""Tensor.external_data: tensors whose values live in another file (schema 3d ExternalBuffer).

tests/python/model_builder.py writes its tables through the PyPI `tflite` package, whose
generated code predates Tensor.external_buffer and Model.external_buffer_groups /
external_buffers, so the model here is written slot by slot with the `flatbuffers` package,
following schema/tflite.fbs (field numbers in the comments). Every value is known to the test.
"""
from __future__ import annotations

import numpy as np
import pytest

import litelens

FLOAT32, FLOAT16 = 0, 1

# (tensor name, type, shape, external buffer id or 0)
TENSORS = [("x", FLOAT32, [1, 4], 0), ("w", FLOAT32, [1, 4], 7), ("y", FLOAT32, [1, 4], 0),
           ("w16", FLOAT16, [2, 3], 9)]
GROUPS = ["weights.bin", "more/weights-2.bin"]
# (id, group, offset, length, packing); deliberately not in id order
EXTERNAL = [(9, 1, 1 << 33, 12, ""), (7, 0, 4096, 16, "unpacked")]


def _model(tensors=TENSORS, groups=GROUPS, external=EXTERNAL) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def ints(values, dtype=np.int32):
        return b.CreateNumpyVector(np.asarray(values, dtype))

    def offsets(items):
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    def table(slots, fields):
        b.StartObject(slots)
        for kind, slot, value in fields:
            {"off": b.PrependUOffsetTRelativeSlot, "u8": b.PrependUint8Slot, "i8": b.PrependInt8Slot,
             "u32": b.PrependUint32Slot, "i32": b.PrependInt32Slot, "u64": b.PrependUint64Slot}[kind](slot, value, 0)
        return b.EndObject()

    # Tensor: shape 0, type 1, buffer 2, name 3, ..., external_buffer 10
    tensor_tables = [table(11, [("off", 0, ints(shape)), ("i8", 1, ttype), ("u32", 2, 0),
                                ("off", 3, b.CreateString(name)), ("u32", 10, ext)])
                     for name, ttype, shape, ext in tensors]
    # Operator: opcode_index 0, inputs 1, outputs 2 (ADD x + w -> y)
    op = table(3, [("u32", 0, 0), ("off", 1, ints([0, 1])), ("off", 2, ints([2]))])
    # SubGraph: tensors 0, inputs 1, outputs 2, operators 3, name 4
    sg = table(5, [("off", 0, offsets(tensor_tables)), ("off", 1, ints([0])), ("off", 2, ints([2])),
                   ("off", 3, offsets([op])), ("off", 4, b.CreateString("main"))])
    # OperatorCode: deprecated_builtin_code 0, custom_code 1, version 2, builtin_code 3 (ADD = 0)
    code = table(4, [("i32", 2, 1)])
    buffer0 = table(3, [])
    # ExternalBufferGroup: name 0; ExternalBuffer: id 0, group 1, offset 2, length 3, packing 4
    group_tables = [table(1, [("off", 0, b.CreateString(g))]) for g in groups]
    ext_tables = []
    for eid, group, offset, length, packing in external:
        fields = [("u32", 0, eid), ("u32", 1, group), ("u64", 2, offset), ("u64", 3, length)]
        if packing:
            fields.append(("off", 4, b.CreateString(packing)))
        ext_tables.append(table(5, fields))
    # Model: version 0, operator_codes 1, subgraphs 2, description 3, buffers 4, ...,
    # external_buffer_groups 8, external_buffers 9
    model = table(10, [("u32", 0, 3), ("off", 1, offsets([code])), ("off", 2, offsets([sg])),
                       ("off", 3, b.CreateString("external buffers")), ("off", 4, offsets([buffer0])),
                       ("off", 8, offsets(group_tables)), ("off", 9, offsets(ext_tables))])
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def test_external_data_fields():
    with litelens.open(_model(), label="external.tflite") as m:
        x, w, y, w16 = m.tensors()
        assert [t.name for t in (x, w, y, w16)] == ["x", "w", "y", "w16"]
        assert x.external_data is None and y.external_data is None
        e = w.external_data
        assert isinstance(e, litelens.ExternalData)
        assert (e.id, e.group, e.group_name, e.offset, e.length, e.packing) == \
            (7, 0, "weights.bin", 4096, 16, "unpacked")
        e16 = w16.external_data
        assert (e16.id, e16.group, e16.group_name, e16.offset, e16.length, e16.packing) == \
            (9, 1, "more/weights-2.bin", 1 << 33, 12, "")   # offsets past 4 GiB survive
        assert "weights.bin" in repr(e) and "offset=4096" in repr(e)
        assert e == w.external_data and e != e16
        assert hash(e) == hash(w.external_data)
        assert (e == None) is False and e != 3  # noqa: E711 - other types compare unequal, not raise
        # the values are not in this file
        assert not w.is_constant and w.nbytes == 0 and w.data_offset is None
        with pytest.raises(ValueError):
            w.numpy()
    # the object holds its own copies: it outlives the model
    del m, x, w, y, w16
    assert (e.group_name, e.packing, e16.group_name) == ("weights.bin", "unpacked", "more/weights-2.bin")


def test_external_buffer_naming_a_missing_id_is_refused():
    bad = _model(external=[(8, 0, 0, 16, "")])  # tensor "w" names id 7, which is not there
    with pytest.raises(litelens.Error) as e:
        litelens.open(bad)
    assert e.value.kind == "index_out_of_range" and "external buffer id 7" in str(e.value)
    bad_group = _model(external=[(7, 5, 0, 16, ""), (9, 1, 0, 12, "")])  # group 5 of 2
    with pytest.raises(litelens.Error) as e:
        litelens.open(bad_group)
    assert e.value.kind == "index_out_of_range" and "group 5" in str(e.value)
