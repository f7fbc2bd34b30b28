"""A small .tflite writer for the Python tests, on the PyPI `tflite` package's FlatBuffers
builders (no litelens code involved), so the models' every value is known to the test.

    mb = ModelBuilder()
    x = mb.tensor("input", FLOAT32, [1, 4])                     # no data: a runtime tensor
    w = mb.const("w", np.ones((2, 4), np.float32))              # the type follows the dtype
    w4 = mb.tensor("w4", INT4, [2, 4], pack_int4(values), quant={"scale": [0.5, 0.25],
                                                                 "zero_point": [0, 0], "axis": 0})
    y = mb.tensor("y", FLOAT32, [1, 2])
    mb.op("FULLY_CONNECTED", [x, w, -1], [y], options=("FullyConnectedOptions", {}))
    mb.io([x], [y])
    data = mb.build()                # or build(data_outside=True): buffers after the FlatBuffer

quant     {"scale": [...], "zero_point": [...], "axis": n} (per channel when there are several
          scales), or {"blockwise": {"scales": tensor, "zero_points": tensor or -1, "block_size": n}}
sparsity  {"traversal_order": [...], "block_map": [...], "levels": [{"format": 0 (dense) or
          1 (CSR), "dense_size": n, "segments": [...], "indices": [...], "index_type": "u8",
          "u16" or "i32" (the default)}]}
options   (BuiltinOptions table name, {field: value}), e.g. ("Conv2DOptions", {"StrideW": 2})

Tensors and operators go to subgraph `sg` (made on first use); indices are per subgraph, -1 is
an absent optional input. Buffer 0 is the empty sentinel; every tensor with data gets its own.
"""
from __future__ import annotations

import numpy as np

# Schema TensorType values (the tflite package lacks the newest two).
FLOAT32, FLOAT16, INT32, UINT8, INT64, STRING, BOOL, INT16, COMPLEX64 = 0, 1, 2, 3, 4, 5, 6, 7, 8
INT8, FLOAT64, UINT64, UINT32, UINT16, INT4, BFLOAT16, INT2, UINT4 = 9, 10, 12, 15, 16, 17, 18, 19, 20

# The NumPy dtype of each type stored one element per value (BOOL as its bytes).
NUMPY_OF_TYPE = {FLOAT32: np.float32, FLOAT16: np.float16, INT32: np.int32, UINT8: np.uint8, INT64: np.int64,
                 BOOL: np.uint8, INT16: np.int16, INT8: np.int8, FLOAT64: np.float64, UINT64: np.uint64,
                 UINT32: np.uint32, UINT16: np.uint16}
TYPE_OF_NUMPY = {np.dtype(v): k for k, v in NUMPY_OF_TYPE.items() if k != BOOL} | {np.dtype(bool): BOOL}


def pack_int4(values) -> bytes:
    """INT4/UINT4 data: two values a byte, element 2k in the low nibble."""
    v = (np.asarray(values, dtype=np.int16) & 0xF).astype(np.uint8)
    if v.size % 2:
        v = np.append(v, 0)
    return (v[0::2] | (v[1::2] << 4)).astype(np.uint8).tobytes()


def pack_int2(values) -> bytes:
    """INT2 data: four values a byte, element 4k in bits 0-1."""
    v = (np.asarray(values, dtype=np.int16) & 3).astype(np.uint8)
    v = np.append(v, np.zeros((-v.size) % 4, np.uint8)).reshape(-1, 4)
    return (v[:, 0] | (v[:, 1] << 2) | (v[:, 2] << 4) | (v[:, 3] << 6)).astype(np.uint8).tobytes()


def csr_last_axis(dense: np.ndarray) -> tuple[dict, np.ndarray]:
    """The sparsity of `dense` stored with every axis dense but the last (CSR), and the values
    stored."""
    rows = dense.reshape(-1, dense.shape[-1])
    segments, indices, values = [0], [], []
    for row in rows:
        nz = np.nonzero(row)[0]
        indices += [int(i) for i in nz]
        values += [row[i] for i in nz]
        segments.append(len(indices))
    levels = [{"format": 0, "dense_size": int(d)} for d in dense.shape[:-1]]
    levels.append({"format": 1, "segments": segments, "indices": indices})
    return {"traversal_order": list(range(dense.ndim)), "levels": levels}, np.asarray(values, dtype=dense.dtype)


def conv_options(stride: int = 1, padding: int = 0, **extra) -> tuple:
    """Conv2DOptions; padding 0 is SAME."""
    fields = {"Padding": padding, "StrideW": stride, "StrideH": stride}
    fields.update(extra)
    return ("Conv2DOptions", fields)


class ModelBuilder:
    """Collects tensors, operators and the rest, then writes them all with build()."""

    def __init__(self, description: str = "litelens test model"):
        self.description = description
        self.buffers: list[bytes] = [b""]
        self.opcodes: list[tuple] = []
        self.subgraphs: list[dict] = []
        self.metadata_entries: list[tuple[str, int]] = []
        self.signatures: list[dict] = []

    def _sg(self, sg: int) -> dict:
        while len(self.subgraphs) <= sg:
            self.subgraphs.append({"tensors": [], "ops": [], "inputs": [], "outputs": [],
                                   "name": f"sg{len(self.subgraphs)}"})
        return self.subgraphs[sg]

    def _buffer(self, data: bytes) -> int:
        self.buffers.append(bytes(data))
        return len(self.buffers) - 1

    def tensor(self, name: str | None, ttype: int, shape, data: bytes | None = None, quant=None, sparsity=None,
               sg: int = 0, is_variable: bool = False, shape_signature=None) -> int:
        """A tensor (name None: unnamed) with `data` as its buffer, or none."""
        g = self._sg(sg)
        g["tensors"].append({"name": name, "type": ttype, "shape": list(shape),
                             "buffer": 0 if data is None else self._buffer(data), "quant": quant,
                             "sparsity": sparsity, "is_variable": is_variable, "shape_signature": shape_signature})
        return len(g["tensors"]) - 1

    def const(self, name: str | None, array, ttype: int | None = None, sg: int = 0, **kw) -> int:
        """A constant holding `array` (little-endian); its type follows the dtype unless given."""
        array = np.asarray(array)
        if ttype is None:
            ttype = TYPE_OF_NUMPY[array.dtype]
        return self.tensor(name, ttype, array.shape, array.astype(array.dtype.newbyteorder("<")).tobytes(), sg=sg,
                           **kw)

    def opcode(self, op: str, custom_code: str | None = None, version: int = 1,
               deprecated_code_only: bool = False) -> int:
        """The index of an operator code, added on first use (call it first to fix the table's order).
        deprecated_code_only: the old style, builtin_code left 0 and the op in deprecated_builtin_code."""
        key = (op, custom_code, version, deprecated_code_only)
        if key not in self.opcodes:
            self.opcodes.append(key)
        return self.opcodes.index(key)

    def op(self, op: str, inputs, outputs, options=None, custom_code: str | None = None,
           custom_options: bytes | None = None, version: int = 1, deprecated_code_only: bool = False,
           sg: int = 0) -> int:
        """An operator `op` (a BuiltinOperator name; "CUSTOM" with custom_code)."""
        g = self._sg(sg)
        g["ops"].append({"opcode": self.opcode(op, custom_code, version, deprecated_code_only),
                         "inputs": list(inputs), "outputs": list(outputs), "options": options,
                         "custom_options": custom_options})
        return len(g["ops"]) - 1

    def io(self, inputs, outputs, sg: int = 0):
        g = self._sg(sg)
        g["inputs"], g["outputs"] = list(inputs), list(outputs)

    def name_subgraph(self, sg: int, name: str):
        self._sg(sg)["name"] = name

    def metadata(self, name: str, data: bytes) -> int:
        """A Model.metadata entry; returns its buffer (always inside the FlatBuffer)."""
        buf = self._buffer(data)
        self.metadata_entries.append((name, buf))
        return buf

    def signature(self, key: str, inputs: dict[str, int], outputs: dict[str, int], sg: int = 0):
        self.signatures.append({"key": key, "inputs": dict(inputs), "outputs": dict(outputs), "sg": sg})

    def build(self, data_outside: bool = False) -> bytes:
        """The .tflite bytes. data_outside: the converter's layout for models over 2 GB, every
        tensor buffer after the FlatBuffer (16-byte aligned), found by its offset and size."""
        if not data_outside:
            return self._flatbuffer({})
        metadata_buffers = {buf for _, buf in self.metadata_entries}
        outside = [i for i, data in enumerate(self.buffers) if data and i not in metadata_buffers]
        # The offsets are from the file's start, so first learn the FlatBuffer's size: placeholder
        # offsets take the same room as the real ones.
        size = len(self._flatbuffer({i: 1 for i in outside}))
        start = size + (-size % 16)
        offsets, tail = {}, b""
        for i in outside:
            offsets[i] = start + len(tail)
            tail += self.buffers[i] + b"\0" * (-len(self.buffers[i]) % 16)
        flatbuffer = self._flatbuffer(offsets)
        assert len(flatbuffer) == size
        return flatbuffer + b"\0" * (start - size) + tail

    def _flatbuffer(self, outside_offsets: dict[int, int]) -> bytes:
        import flatbuffers
        import tflite
        b = flatbuffers.Builder(1 << 16)

        def table(kind: str, **fields) -> int:
            """A `kind` table (a tflite schema name) with the fields that are not None, in order."""
            getattr(tflite, f"{kind}Start")(b)
            for field, value in fields.items():
                if value is not None:
                    getattr(tflite, f"{kind}Add{field}")(b, value)
            return getattr(tflite, f"{kind}End")(b)

        def ivec(vals, dtype=np.int32):
            return b.CreateNumpyVector(np.asarray(vals, dtype=dtype))

        def ovec(offs):
            b.StartVector(4, len(offs), 4)
            for o in reversed(offs):
                b.PrependUOffsetTRelative(o)
            return b.EndVector()

        def string(s):
            return b.CreateString(s) if s is not None else None

        def index_vec(vals, kind):
            cls, dt, code = {"u8": ("Uint8Vector", np.uint8, 3), "u16": ("Uint16Vector", np.uint16, 2),
                             "i32": ("Int32Vector", np.int32, 1)}[kind]
            return code, table(cls, Values=ivec(vals, dt))

        def quant(q):
            if "blockwise" in q:
                # BlockwiseQuantization is newer than the tflite package: its table by hand.
                bw = q["blockwise"]
                b.ForceDefaults(True)
                b.StartObject(3)
                b.PrependInt32Slot(0, bw["scales"], 0)
                b.PrependInt32Slot(1, bw["zero_points"], 0)
                b.PrependInt32Slot(2, bw["block_size"], 0)
                details = b.EndObject()
                b.ForceDefaults(False)
                return table("QuantizationParameters", DetailsType=2, Details=details,
                             QuantizedDimension=q.get("axis", 0))
            s, z = ivec(q["scale"], np.float32), ivec(q["zero_point"], np.int64)
            return table("QuantizationParameters", Scale=s, ZeroPoint=z, QuantizedDimension=q.get("axis", 0))

        def sparsity(sp):
            dims = []
            for lv in sp["levels"]:
                seg = idx = (None, None)
                if lv["format"] == 1:
                    kind = lv.get("index_type", "i32")
                    seg = index_vec(lv["segments"], kind)
                    idx = index_vec(lv["indices"], kind)
                dims.append(table("DimensionMetadata", Format=lv["format"], DenseSize=lv.get("dense_size", 0),
                                  ArraySegmentsType=seg[0], ArraySegments=seg[1],
                                  ArrayIndicesType=idx[0], ArrayIndices=idx[1]))
            to = ivec(sp["traversal_order"])
            bm = ivec(sp["block_map"]) if sp.get("block_map") else None
            return table("SparsityParameters", TraversalOrder=to, BlockMap=bm, DimMetadata=ovec(dims))

        def tensor(t):
            name, shape = string(t["name"]), ivec(t["shape"])
            sig = ivec(t["shape_signature"]) if t["shape_signature"] is not None else None
            q = quant(t["quant"]) if t["quant"] else None
            sp = sparsity(t["sparsity"]) if t["sparsity"] else None
            return table("Tensor", Shape=shape, ShapeSignature=sig, Type=t["type"], Buffer=t["buffer"], Name=name,
                         Quantization=q, Sparsity=sp, IsVariable=t["is_variable"] or None)

        def operator(o):
            ins, outs = ivec(o["inputs"]), ivec(o["outputs"])
            opt_type = opt = None
            if o["options"]:
                kind, fields = o["options"]
                opt_type, opt = getattr(tflite.BuiltinOptions, kind), table(kind, **fields)
            custom = ivec(np.frombuffer(o["custom_options"], np.uint8), np.uint8) if o["custom_options"] else None
            return table("Operator", OpcodeIndex=o["opcode"], Inputs=ins, Outputs=outs, BuiltinOptionsType=opt_type,
                         BuiltinOptions=opt, CustomOptions=custom)

        sgs = []
        for g in self.subgraphs:
            tv = ovec([tensor(t) for t in g["tensors"]])
            ov = ovec([operator(o) for o in g["ops"]])
            iv, outv = ivec(g["inputs"]), ivec(g["outputs"])
            sgs.append(table("SubGraph", Tensors=tv, Inputs=iv, Outputs=outv, Operators=ov, Name=string(g["name"])))
        sgv = ovec(sgs)

        codes = []
        for op, custom_code, version, deprecated_code_only in self.opcodes:
            code = getattr(tflite.BuiltinOperator, op)
            # Codes from 127 on exist only in builtin_code; deprecated_builtin_code holds 127.
            codes.append(table("OperatorCode", DeprecatedBuiltinCode=min(code, 127),
                               BuiltinCode=None if deprecated_code_only else code, CustomCode=string(custom_code),
                               Version=version))
        cv = ovec(codes)

        bufs = []
        for i, data in enumerate(self.buffers):
            outside = i in outside_offsets
            dv = None
            if data and not outside:
                b.StartVector(1, len(data), 16)  # 16-byte aligned, like the converter
                b.head = b.head - len(data)
                b.Bytes[b.head:b.head + len(data)] = data
                dv = b.EndVector()
            bufs.append(table("Buffer", Data=dv, Offset=outside_offsets.get(i), Size=len(data) if outside else None))
        bv = ovec(bufs)

        mdv = sdv = None
        if self.metadata_entries:
            mdv = ovec([table("Metadata", Name=string(name), Buffer=buf) for name, buf in self.metadata_entries])
        if self.signatures:
            def tensor_maps(names):
                return ovec([table("TensorMap", Name=string(name), TensorIndex=index) for name, index in names.items()])

            sdv = ovec([table("SignatureDef", Inputs=tensor_maps(sig["inputs"]), Outputs=tensor_maps(sig["outputs"]),
                              SignatureKey=string(sig["key"]), SubgraphIndex=sig["sg"]) for sig in self.signatures])

        desc = string(self.description)
        model = table("Model", Version=3, OperatorCodes=cv, Subgraphs=sgv, Description=desc, Buffers=bv,
                      Metadata=mdv, SignatureDefs=sdv)
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())
