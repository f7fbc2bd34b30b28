"""
Native bindings of litelens (use the litelens package, not this module).
"""

from collections.abc import Iterator, Mapping, Sequence
import os
import pathlib
from typing import Any

import numpy
import numpy.typing


class Error(Exception):
    """
    A model file that litelens cannot read, or an export that cannot be written.

    Attributes:
        kind: stable lowercase name of the problem ("truncated", "bad_identifier",
            "size_mismatch", "buffer_out_of_file", "invalid_metadata", "output", ...).
        path: the file's path, or the label given to from_bytes() ("<memory>").
        offset: byte offset in the file where the problem sits, or None.
        message: the short message without path and offset.
    """

    kind: str
    path: str
    offset: int | None
    message: str

class Quantization:
    """
    Quantization parameters of a tensor: real = scale * (q - zero_point).

    Affine quantization is per tensor (one scale) or per axis (one scale per slice
    along ``axis``). Blockwise schemes keep their scales in other tensors.
    """

    @property
    def scheme(self) -> str:
        """"affine", "blockwise", "multi_axis", "custom" or "unknown"."""

    @property
    def scales(self) -> numpy.typing.NDArray[numpy.float32]:
        """
        The scales (float32 array; one value per tensor or per slice along ``axis``).
        """

    @property
    def zero_points(self) -> numpy.typing.NDArray[numpy.int64]:
        """The zero points (int64 array; one value, or one per scale)."""

    @property
    def axis(self) -> int:
        """The quantized dimension: the axis per-axis scales run along."""

    @property
    def min(self) -> numpy.typing.NDArray[numpy.float32]:
        """Calibration minimum (float32 array, informational; may be empty)."""

    @property
    def max(self) -> numpy.typing.NDArray[numpy.float32]:
        """Calibration maximum (float32 array, informational; may be empty)."""

    @property
    def is_per_axis(self) -> bool:
        """True when there is one scale per slice along ``axis``."""

    @property
    def block_size(self) -> int:
        """Block size of blockwise quantization (0 otherwise)."""

    @property
    def scales_tensor(self) -> int | None:
        """
        Blockwise and multi-axis schemes: the tensor holding the scales, else None.
        """

    @property
    def zero_points_tensor(self) -> int | None:
        """
        Blockwise and multi-axis schemes: the tensor holding the zero points, or None (all zero).
        """

    def __repr__(self) -> str: ...

class ModelWarning:
    """
    Something odd in the file that the runtime tolerates (the model still opens).
    """

    @property
    def code(self) -> str:
        """Short stable identifier, e.g. "nonempty_buffer0"."""

    @property
    def message(self) -> str:
        """One readable line."""

    @property
    def offset(self) -> int | None:
        """Byte offset in the file, or None."""

    @property
    def subgraph(self) -> int | None:
        """
        Subgraph of the tensor the warning is about, or None when it is about the model.
        """

    @property
    def tensor(self) -> int | None:
        """Index of the tensor the warning is about, or None."""

    def __repr__(self) -> str: ...

class Signature:
    """A named entry point of the model (a SignatureDef)."""

    @property
    def key(self) -> str:
        """The signature's name."""

    @property
    def subgraph(self) -> int:
        """The subgraph it runs."""

    @property
    def inputs(self) -> dict[str, int]:
        """Input name -> tensor index in ``subgraph``."""

    @property
    def outputs(self) -> dict[str, int]:
        """Output name -> tensor index in ``subgraph``."""

    def __repr__(self) -> str: ...

class ExternalData:
    """
    Where a tensor's values are when they live in an external file (schema 3d
    ExternalBuffer in an ExternalBufferGroup). litelens never opens that file: how a
    group name becomes a file is up to the application that wrote the model.
    """

    @property
    def id(self) -> int:
        """The ExternalBuffer id (what the tensor's external_buffer field names)."""

    @property
    def group(self) -> int:
        """Index of the ExternalBufferGroup."""

    @property
    def group_name(self) -> str:
        """The group's name: a file name or URI, as written."""

    @property
    def offset(self) -> int:
        """Byte offset of the values inside that file."""

    @property
    def length(self) -> int:
        """Byte length of the values."""

    @property
    def packing(self) -> str:
        """Free-form packing note, as written ("" when absent)."""

    def __eq__(self, arg: ExternalData, /) -> bool: ...

    def __hash__(self) -> int: ...

    def __repr__(self) -> str: ...

class Tensor:
    """
    A tensor of a subgraph. It keeps its model's data alive.

    Constant tensors (``is_constant``) carry values in the file; ``numpy()`` reads them.
    """

    @property
    def subgraph(self) -> int:
        """Index of the subgraph."""

    @property
    def index(self) -> int:
        """Index of the tensor in its subgraph."""

    @property
    def name(self) -> str:
        """The tensor's name (may be empty)."""

    @property
    def shape(self) -> tuple[int, ...]:
        """Dimensions (row-major); () for a scalar."""

    @property
    def shape_signature(self) -> tuple[int, ...]:
        """
        Dimensions with -1 where the size is known only at run time; () when fully static.
        """

    @property
    def dtype(self) -> str:
        """
        The stored element type as the schema names it, lowercase: "float32", "float16",
        "int8", "int4", "bfloat16", ... ("unknown(N)" for codes this build does not know).
        """

    @property
    def buffer(self) -> int:
        """Index of the tensor's buffer."""

    @property
    def is_variable(self) -> bool:
        """True for a variable tensor."""

    @property
    def external_data(self) -> ExternalData | None:
        """
        Where the values are when they live in an external file (an :class:`ExternalData`
        with id, group, group_name, offset, length and packing), or None. Such a tensor
        has no data in this file: ``numpy()`` raises ValueError.
        """

    @property
    def is_constant(self) -> bool:
        """True when the file holds values for this tensor."""

    @property
    def is_sparse(self) -> bool:
        """True when the values are stored sparse (see ``sparsity``)."""

    @property
    def nbytes(self) -> int:
        """
        Stored byte count (0 without data; the compressed size for sparse tensors).
        """

    @property
    def data_offset(self) -> int | None:
        """Absolute file offset of the stored bytes, or None."""

    def will_need(self) -> None:
        """
        Asks the OS to start reading the stored bytes now, in the background.

        Weights already get the OS's normal read-ahead when they are read (metadata is mapped
        for random access, so that opening a model reads no weights); this starts it before
        the first touch.
        """

    @property
    def quantization(self) -> Quantization | None:
        """Quantization parameters, or None when the tensor is not quantized."""

    @property
    def sparsity(self) -> dict[str, Any] | None:
        """
        Sparsity parameters as a dict (traversal_order, block_map, dim_metadata), or None.
        """

    def numpy(self) -> numpy.typing.NDArray[Any]:
        """
        The stored values as a dense NumPy array in the tensor's own dtype.

        Zero-copy and read-only when the stored bytes already are the dense values (the array
        keeps the model alive); a fresh array when INT4/UINT4/INT2 values are unpacked (to
        int8/uint8) or sparse values densified. float16 stays float16; bfloat16 and float8
        come out as their raw bits (uint16 / uint8): use ``dequantize()`` for float32.

        Raises:
            ValueError: the tensor has no data in the file, or no numeric form (string).
        """

    def dequantize(self) -> numpy.typing.NDArray[Any]:
        """
        The values as float32: float16/bfloat16/float8/float64 converted, quantized integers
        dequantized (per tensor, per axis or blockwise), and unquantized integers and booleans
        converted to float32 too (complex values, which have no float32 form, stay as stored).
        """

    def values(self, mode: str = 'stored') -> numpy.typing.NDArray[Any]:
        """
        The values decoded as far as ``mode`` says: "stored" (= ``numpy()``), "widened"
        (float16/bfloat16/float8 widened to float32) or "dequantized" (float32 for every
        numeric dtype, = ``dequantize()``).
        """

    def raw(self) -> numpy.typing.NDArray[numpy.uint8]:
        """
        The stored bytes as a read-only uint8 array (zero-copy): packed and compressed exactly
        as in the file. Empty when the tensor has no data.
        """

    def strings(self) -> list[bytes]:
        """The values of a STRING tensor as a list of bytes."""

    def __repr__(self) -> str: ...

class Operator:
    """An operator of a subgraph, with its decoded options."""

    @property
    def subgraph(self) -> int:
        """Index of the subgraph."""

    @property
    def index(self) -> int:
        """Index of the operator in its subgraph."""

    @property
    def op(self) -> str:
        """
        The builtin op name ("CONV_2D"), "CUSTOM", or "UNKNOWN" for codes this build does not know.
        """

    @property
    def opcode(self) -> int:
        """The effective builtin code."""

    @property
    def custom_code(self) -> str | None:
        """The custom op's name, or None for builtin ops."""

    @property
    def version(self) -> int:
        """The op version."""

    @property
    def inputs(self) -> list[int]:
        """Input tensor indices; -1 marks an absent optional input."""

    @property
    def outputs(self) -> list[int]:
        """Output tensor indices."""

    @property
    def intermediates(self) -> list[int]:
        """Intermediate tensor indices."""

    @property
    def options_type(self) -> str:
        """Name of the options table ("Conv2DOptions"), "" when there is none."""

    @property
    def options(self) -> dict[str, Any]:
        """
        Decoded options as a dict: field name -> value, enums by name (padding "SAME").
        For custom ops, the FlexBuffers payload decoded (empty when absent or undecodable).
        """

    @property
    def custom_options(self) -> bytes:
        """The raw custom options payload (b"" when there is none)."""

    def __repr__(self) -> str: ...

class Subgraph:
    """A subgraph of the model (subgraph 0 is the main one)."""

    @property
    def index(self) -> int:
        """Index of the subgraph."""

    @property
    def name(self) -> str:
        """The subgraph's name (may be empty)."""

    @property
    def inputs(self) -> list[int]:
        """Input tensor indices."""

    @property
    def outputs(self) -> list[int]:
        """Output tensor indices."""

    @property
    def tensor_count(self) -> int:
        """Number of tensors."""

    @property
    def operator_count(self) -> int:
        """Number of operators."""

    def tensors(self) -> list[Tensor]:
        """The subgraph's tensors."""

    def operators(self) -> list[Operator]:
        """The subgraph's operators."""

    def __repr__(self) -> str: ...

class Model:
    """
    An opened, validated .tflite model. Use ``litelens.open()`` to get one.

    The file is memory-mapped read-only (or the caller's bytes copied) and validated once;
    afterwards nothing read from it can fail because of the file's bytes. A Model is a
    context manager; ``close()`` drops this object's hold on the mapping, which is released
    once no Tensor, Layer, Param or array made from it is alive.
    """

    @staticmethod
    def open(path: str | os.PathLike) -> Model:
        """
        Memory-maps and validates the file at ``path``.

        Raises:
            Error: the file cannot be read or is not a valid model.
        """

    @staticmethod
    def from_bytes(data: bytes | bytearray | memoryview, label: str = '<memory>') -> Model:
        """
        Copies and validates a model held in memory; ``label`` names it in errors.

        Raises:
            Error: the bytes are not a valid model.
        """

    def close(self) -> None:
        """
        Closes this model object. Arrays, tensors and layers made from it stay valid.
        """

    @property
    def closed(self) -> bool:
        """True after close()."""

    def __enter__(self) -> Model: ...

    def __exit__(self, exc_type: object | None, exc_value: object | None, traceback: object | None) -> None: ...

    @property
    def path(self) -> str:
        """The path given to open(), or the label given to from_bytes()."""

    @property
    def file_size(self) -> int:
        """Total bytes (the FlatBuffer plus anything stored after it)."""

    @property
    def flatbuffer_size(self) -> int:
        """
        Where the FlatBuffer part ends; bytes past it are weights or an appended archive.
        """

    @property
    def version(self) -> int:
        """The schema version (3)."""

    @property
    def description(self) -> str:
        """The model's description string."""

    @property
    def subgraphs(self) -> list[Subgraph]:
        """The subgraphs, main graph first."""

    def tensors(self, subgraph: int = 0) -> list[Tensor]:
        """
        The tensors of a subgraph.

        Raises:
            IndexError: no such subgraph.
        """

    def tensor(self, key: int | str, subgraph: int = 0) -> Tensor:
        """
        One tensor, by index or by name (the first with that name).

        Raises:
            IndexError: bad index or subgraph.
            KeyError: no tensor has that name.
        """

    def operators(self, subgraph: int = 0) -> list[Operator]:
        """
        The operators of a subgraph, in execution order.

        Raises:
            IndexError: no such subgraph.
        """

    @property
    def signatures(self) -> list[Signature]:
        """The signature defs."""

    @property
    def metadata(self) -> dict[str, bytes]:
        """
        The Model.metadata entries: name -> bytes (the first entry wins when a name repeats).
        Decoded forms: ``read_model_metadata()``, ``read_conversion_metadata()``,
        ``min_runtime_version``.
        """

    @property
    def warnings(self) -> list[ModelWarning]:
        """Oddities found at open that the runtime tolerates."""

    def file_bytes(self) -> numpy.typing.NDArray[numpy.uint8]:
        """
        The whole file as a read-only uint8 array (zero-copy; it keeps the model alive).
        """

    def __repr__(self) -> str: ...

    def layers(self, op: str | Sequence[str] | None = None, name: str | None = None, index: int | None = None, subgraph: int | None = None, exact: bool = False, first: bool = False) -> list[Layer]:
        """
        The layers matching a selection (all of them by default), in subgraph then operator order.

        Args:
            op: op name(s) ("CONV_2D", case-insensitive) or custom code(s).
            name: a glob when it holds any of ``*?[``, else a substring; tried against the layer
                name, its fused parts and its parameters' tensor names.
            index: operator index (within ``subgraph``, default 0).
            subgraph: only this subgraph.
            exact: ``name`` must equal one of those names exactly.
            first: only the first match (at most one layer, like ``--first``).

        Returns an empty list when nothing matches.

        Raises:
            IndexError: ``index`` or ``subgraph`` does not exist.
        """

    def layer(self, index: int, subgraph: int = 0) -> Layer:
        """
        The layer of one operator.

        Raises:
            IndexError: no such operator or subgraph.
        """

    def closest_layer_names(self, name: str, op: str | Sequence[str] | None = None, subgraph: int | None = None, limit: int = 5) -> list[str]:
        """
        Up to ``limit`` layer names closest to ``name`` (for "did you mean" messages).
        """

    def extract(self, output: str | os.PathLike[str], op: str | Sequence[str] | None = None, name: str | None = None, index: int | None = None, subgraph: int | None = None, exact: bool = False, format: str | None = None, dequantize: bool = False, layout: str = 'tflite', all_ops: bool = False, first: bool = False) -> ExportReport:
        """
        Writes the selected layers' parameters to a file, like ``litelens extract``.

        Each array's key is "<layer key>/<role>" ("sg0.op3.CONV_2D/filter"); every export
        carries a manifest describing each key. The file is written atomically.

        Args:
            output: .npz, .safetensors, .json, .h, or a folder of .npy files.
            op: op name(s) or custom code(s), as for ``layers()``.
            name: layer name pattern (glob if it holds ``*?[``, else a substring).
            index: operator index (within ``subgraph``, default 0).
            subgraph: only this subgraph.
            exact: ``name`` must match exactly.
            first: only the first matching layer (``--first``).
            format: "npz", "npy", "safetensors", "json" or "c"; default: from ``output``.
            dequantize: write float32 values (default: the stored values, unpacked and densified).
            layout: "tflite", "keras" or "torch".
            all_ops: also export the inputs of DEQUANTIZE and DENSIFY layers.

        Raises:
            KeyError: nothing matches the selection (the message lists the closest candidates).
            Error: the output cannot be written (kind "output").
            ValueError: unknown format or layout.
        """

    def export_bytes(self, format: str = 'npz', op: str | Sequence[str] | None = None, name: str | None = None, index: int | None = None, subgraph: int | None = None, exact: bool = False, dequantize: bool = False, layout: str = 'tflite', all_ops: bool = False, first: bool = False) -> bytes:
        """
        The same export as ``extract()``, returned as bytes instead of written to a file.

        Args:
            format: "npz", "safetensors", "json" or "c".
            op: op name(s) or custom code(s), as for ``layers()``.
            name: layer name pattern (glob if it holds ``*?[``, else a substring).
            index: operator index (within ``subgraph``, default 0).
            subgraph: only this subgraph.
            exact: ``name`` must match exactly.
            first: only the first matching layer (``--first``).
            dequantize, layout, all_ops: as for ``extract()``.

        Raises:
            KeyError: nothing matches the selection.
            ValueError: unknown format or layout.
        """

    def read_model_metadata(self) -> ModelInfo | None:
        """
        The decoded TFLITE_METADATA entry, or None when the model has none.

        Raises:
            Error: the entry is broken (kind "invalid_metadata").
        """

    def read_conversion_metadata(self) -> ConversionInfo | None:
        """
        The decoded CONVERSION_METADATA entry, or None.

        Raises:
            Error: the entry is broken.
        """

    @property
    def min_runtime_version(self) -> str | None:
        """The min_runtime_version entry ("1.14.0"), or None."""

    @property
    def associated_files(self) -> list[AssociatedFile]:
        """
        The members of the archive appended to the model (empty when there is none).

        Raises:
            Error: the archive is broken (kind "invalid_metadata").
        """

    def read_associated_file(self, name: str) -> bytes:
        """
        The bytes of an associated file, decompressed and CRC-checked.

        Raises:
            KeyError: no member has that name.
            Error: the member is corrupt.
        """

    def extract_associated_files(self, dir: str | os.PathLike[str]) -> list[pathlib.Path]:
        """
        Writes every associated file under ``dir`` (created if needed), like
        ``litelens files MODEL --extract DIR``.

        Every member is decoded and CRC-checked before any final name appears, and each file is
        written atomically, so a broken archive leaves no new files behind.

        Returns:
            The paths written, in archive order (empty when the model has no archive).

        Raises:
            Error: the archive is broken or a member is corrupt (kind "invalid_metadata"), or a
                file cannot be written (kind "output").
        """

    def patch(self, output: str | os.PathLike[str], values: Mapping[str, numpy.typing.ArrayLike] | None = None, quantization: Mapping[str, Mapping[str, Any] | Quantization | str] | None = None, *, quantize: bool = False, layout: str = 'tflite', subgraph: int | None = None, in_place: bool = False) -> PatchReport:
        """
        Writes a copy of the model with new constant values and/or quantization
        parameters, like ``litelens patch``. Everything else is kept byte for byte.

        The output is written to a temporary file, re-opened, validated and compared with
        this model, and only then renamed into place. This model is never modified.

        Args:
            output: the patched model's path.
            values: selector -> new values (a NumPy array or anything ``numpy.asarray`` takes).
                A selector is a tensor name, ``"#N"`` (tensor N of ``subgraph``, default 0) or
                ``"<layer key>/<role>"`` (``"sg0.op12.CONV_2D/filter"``); one that names the
                output of DEQUANTIZE or DENSIFY patches the constant behind it. The array must have
                the stored shape and the stored dtype, or one litelens converts: float32 for float16
                and bfloat16 (narrowed), int8/uint8 for int4/int2/uint4 (packed), float32 for a
                quantized tensor with ``quantize=True``. bfloat16 and float8 constants also take the
                raw bits ``numpy()`` returns (uint16 / uint8).
            quantization: selector -> new affine parameters: a mapping with ``scale`` (required),
                ``zero_point``, ``axis``, ``min``, ``max``; a :class:`Quantization`; or the CLI's
                ``--set-quant`` text. The stored integers are kept (give values with
                ``quantize=True`` too to re-quantize).
            quantize: quantize float32 values for quantized integer tensors with the tensor's
                (possibly new) scales and zero points.
            layout: the layout of ``values`` for layer-key selectors: "tflite", "keras" or "torch".
            subgraph: where names and ``#N`` are looked up (names: every subgraph by default).
            in_place: allow ``output`` to be this model's own file (still atomic).

        Returns:
            A PatchReport (patched tensors, warnings, output size).

        Raises:
            UnknownSelectorError: a selector matches nothing (a ``KeyError``; the message lists close
                names).
            PatchError: the patch cannot be applied as asked (a ``ValueError``; ``kind`` says why:
                "shape_mismatch", "dtype_mismatch", "value_out_of_range", ...). Nothing is written.
            Error: the model cannot be read, or the output cannot be written (kind "output").
            TypeError: a value has no litelens dtype, or an argument has the wrong type.
        """

    def patch_bytes(self, values: Mapping[str, numpy.typing.ArrayLike] | None = None, quantization: Mapping[str, Mapping[str, Any] | Quantization | str] | None = None, *, quantize: bool = False, layout: str = 'tflite', subgraph: int | None = None) -> bytes:
        """
        The same patch as ``patch()``, returned as the patched model's bytes (validated and
        compared with this model like a file).

        Args:
            values: selector -> new values (a NumPy array or anything ``numpy.asarray`` takes).
                A selector is a tensor name, ``"#N"`` (tensor N of ``subgraph``, default 0) or
                ``"<layer key>/<role>"`` (``"sg0.op12.CONV_2D/filter"``); one that names the
                output of DEQUANTIZE or DENSIFY patches the constant behind it. The array must have
                the stored shape and the stored dtype, or one litelens converts: float32 for float16
                and bfloat16 (narrowed), int8/uint8 for int4/int2/uint4 (packed), float32 for a
                quantized tensor with ``quantize=True``. bfloat16 and float8 constants also take the
                raw bits ``numpy()`` returns (uint16 / uint8).
            quantization: selector -> new affine parameters: a mapping with ``scale`` (required),
                ``zero_point``, ``axis``, ``min``, ``max``; a :class:`Quantization`; or the CLI's
                ``--set-quant`` text. The stored integers are kept (give values with
                ``quantize=True`` too to re-quantize).
            quantize: quantize float32 values for quantized integer tensors with the tensor's
                (possibly new) scales and zero points.
            layout: the layout of ``values`` for layer-key selectors: "tflite", "keras" or "torch".
            subgraph: where names and ``#N`` are looked up (names: every subgraph by default).

        Raises:
            UnknownSelectorError: a selector matches nothing (a ``KeyError``; the message lists close
                names).
            PatchError: the patch cannot be applied as asked (a ``ValueError``; ``kind`` says why:
                "shape_mismatch", "dtype_mismatch", "value_out_of_range", ...). Nothing is written.
            Error: the model cannot be read, or the output cannot be written (kind "output").
            TypeError: a value has no litelens dtype, or an argument has the wrong type.
        """

    def patch_from_export(self, output: str | os.PathLike[str], export_file: str | os.PathLike[str], *, manifest: str | os.PathLike[str] | None = None, quantize: bool = False, subgraph: int | None = None, in_place: bool = False) -> PatchReport:
        """
        Patches every array of an export back into the model, like ``litelens patch --from``.

        ``export_file`` is an .npz or .safetensors written by ``extract()`` (and perhaps
        edited). Its manifest matches each key to the model (the stored tensor and its name
        must agree); keras/torch layouts are permuted back and ``dequantize=True`` exports are
        quantized back (or narrowed to float16). Arrays without a manifest entry use their key
        as a selector. Exporting and patching back without edits reproduces every byte.

        Args:
            output: the patched model's path.
            export_file: the .npz or .safetensors export.
            manifest: take the manifest from this export or manifest.json instead.
            quantize: quantize float32 arrays without a manifest entry, as ``patch()``.
            subgraph: where keys that are tensor names or ``#N`` are looked up.
            in_place: allow ``output`` to be this model's own file.

        Returns:
            A PatchReport.

        Raises:
            UnknownSelectorError: a selector matches nothing (a ``KeyError``; the message lists close
                names).
            PatchError: the patch cannot be applied as asked (a ``ValueError``; ``kind`` says why:
                "shape_mismatch", "dtype_mismatch", "value_out_of_range", ...). Nothing is written.
            Error: the model cannot be read, or the output cannot be written (kind "output").
            TypeError: a value has no litelens dtype, or an argument has the wrong type.
            (kind "manifest_mismatch": the export describes another model; "bad_values_file":
            it cannot be read.)
        """

    def diff(self, other: Model, *, values: bool = True, subgraph: int | None = None) -> ModelDiff:
        """
        Compares this model (A) with ``other`` (B) parameter by parameter, like ``litelens diff``.

        Layers (operators with constant inputs; DEQUANTIZE, DENSIFY and QUANTIZE are followed or
        skipped) of subgraph i of A are matched with those of subgraph i of B by name, normalized
        name, name stem, then position; their parameters are paired by role and compared: shape,
        dtype and quantization changes, and the values dequantized to float64 (max_abs_diff,
        rel_error, cosine). See docs/patch.md.

        Args:
            other: the model to compare with.
            values: compare values too (False: shapes, dtypes and quantization only; reads no
                weights).
            subgraph: only this subgraph of both models.

        Returns:
            A ModelDiff.

        Raises:
            IndexError: ``subgraph`` does not exist in one of the models.
        """

class Param:
    """
    One input of a layer, resolved to the constant that holds its numbers.

    When a filter comes out of DEQUANTIZE (an fp16 or int8 constant) or DENSIFY (a sparse
    constant), ``stored_tensor`` is that constant and ``via`` lists the ops followed. The
    shape, dtype and quantization describe the stored constant (or, for a parameter fed at
    run time, the op's input tensor).
    """

    @property
    def role(self) -> str:
        """
        "input", "filter", "bias", "input_to_forget_weights", ..., or "input_<i>".
        """

    @property
    def input_index(self) -> int:
        """Position among the operator's inputs."""

    @property
    def tensor(self) -> int:
        """The operator's input tensor index."""

    @property
    def stored_tensor(self) -> int | None:
        """
        Index of the constant holding the values, or None when fed at run time.
        """

    @property
    def via(self) -> list[str]:
        """
        Ops followed from ``tensor`` to ``stored_tensor``, nearest first, e.g. ["DEQUANTIZE"].
        """

    @property
    def via_ops(self) -> list[int]:
        """Indices of the ops in ``via``."""

    @property
    def layout(self) -> str | None:
        """
        Layout label of the stored values: "OHWI" (conv filters), "1HWC" (depthwise,
        last axis C*M), "OI" (fully connected), "O" (biases), ...; None when no layout applies.
        """

    @property
    def is_runtime(self) -> bool:
        """
        True when the values are not in the file (a graph input or a computed tensor).
        """

    @property
    def name(self) -> str:
        """Name of the stored tensor."""

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the stored tensor."""

    @property
    def dtype(self) -> str:
        """Stored dtype ("float16", "int8", ...)."""

    @property
    def quantization(self) -> Quantization | None:
        """Quantization of the stored tensor, or None."""

    def numpy(self) -> numpy.typing.NDArray[Any]:
        """
        The stored values, dense, in their own dtype and the file's layout.

        Zero-copy and read-only when the stored bytes already are the dense values (the array
        keeps the model alive); a fresh array when INT4/UINT4/INT2 values are unpacked or sparse
        values densified. float16 stays float16; bfloat16 and float8 come out as their raw bits
        (uint16 / uint8); ``dequantize()`` gives float32.

        Raises:
            ValueError: the parameter is fed at run time.
        """

    def dequantize(self) -> numpy.typing.NDArray[Any]:
        """
        The values as float32, whatever the stored dtype: floats converted, quantized integers
        dequantized (per tensor, per axis, blockwise; int32/int64 biases with their own scales),
        unquantized integers and booleans (shapes, paddings, axes) converted as they are.
        """

    def values(self, mode: str = 'stored') -> numpy.typing.NDArray[Any]:
        """
        Values decoded per ``mode``: "stored" (= ``numpy()``), "widened" (float16/bfloat16/
        float8 widened to float32, other dtypes as stored) or "dequantized" (float32 for every
        numeric dtype, = ``dequantize()``).
        """

    def consumed(self) -> numpy.typing.NDArray[Any]:
        """
        The values the operator consumes: dequantized (float32) when the parameter comes
        through DEQUANTIZE, otherwise the stored values (dense, unpacked).
        """

    def to_layout(self, layout: str, dequantize: bool = False) -> numpy.typing.NDArray[Any]:
        """
        The values converted to another framework's layout.

        Args:
            layout: "tflite" (unchanged), "keras" (HWIO; depthwise HWCM) or "torch"
                (OIHW; depthwise O1HW, i.e. C*M,1,H,W). Parameters without a framework layout are
                returned unchanged.
            dequantize: convert the float32 values of ``dequantize()`` instead of the stored ones,
                so the result is float32.

        Raises:
            ValueError: unknown layout, or a parameter fed at run time.
        """

    def layout_for(self, layout: str) -> str | None:
        """
        The layout label ``to_layout(layout)`` produces ("HWIO", "OIHW", ...), or None.
        """

    def __repr__(self) -> str: ...

class Layer:
    """
    An operator with its options and its inputs by role. It keeps its model's data alive.
    """

    @property
    def subgraph(self) -> int:
        """Index of the subgraph."""

    @property
    def index(self) -> int:
        """The operator's index in its subgraph."""

    @property
    def op(self) -> str:
        """Builtin op name ("CONV_2D"), "CUSTOM" or "UNKNOWN"."""

    @property
    def custom_code(self) -> str | None:
        """The custom op's name, or None."""

    @property
    def name(self) -> str:
        """
        The first output tensor's name (converters fuse several names with ';').
        """

    @property
    def name_parts(self) -> list[str]:
        """``name`` split at ';'."""

    @property
    def key(self) -> str:
        """
        Stable key "sg<subgraph>.op<index>.<op>", used by exports ("sg0.op12.CONV_2D").
        """

    @property
    def options(self) -> dict[str, Any]:
        """
        Decoded options as a dict (stride_w, padding, fused_activation_function, ...).
        """

    @property
    def params(self) -> dict[str, Param]:
        """
        The present inputs by role, in input order (absent optional inputs are left out).
        """

    def __repr__(self) -> str: ...

class ExportReport:
    """What an export wrote."""

    @property
    def arrays(self) -> int:
        """Number of arrays written."""

    @property
    def bytes(self) -> int:
        """Bytes of array values written."""

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """
        (key, reason) of each parameter left out because its values have no array form (string, resource and variant tensors).
        """

    def __repr__(self) -> str: ...

class AssociatedFileInfo:
    """A file the metadata refers to (by name)."""

    @property
    def name(self) -> str:
        """The file's name (a member of the appended archive)."""

    @property
    def description(self) -> str:
        """What the file holds."""

    @property
    def type(self) -> int:
        """The AssociatedFileType code."""

    @property
    def type_name(self) -> str:
        """"TENSOR_AXIS_LABELS", "VOCABULARY", ..., "UNKNOWN(n)"."""

    @property
    def locale(self) -> str:
        """Locale of the file (may be empty)."""

    @property
    def version(self) -> str:
        """Version of the file (may be empty)."""

    def __repr__(self) -> str: ...

class ContentInfo:
    """What a tensor holds (TensorMetadata.content)."""

    @property
    def kind(self) -> str:
        """"none", "feature", "image", "bounding_box", "audio" or "unknown"."""

    @property
    def kind_code(self) -> int:
        """The raw union tag."""

    @property
    def color_space(self) -> str:
        """Image: "RGB", "GRAYSCALE" or "UNKNOWN"."""

    @property
    def default_width(self) -> int | None:
        """Image: default width, or None."""

    @property
    def default_height(self) -> int | None:
        """Image: default height, or None."""

    @property
    def box_index(self) -> list[int]:
        """Bounding box: order of the four values (empty: natural)."""

    @property
    def box_type(self) -> str:
        """Bounding box: "BOUNDARIES", "UPPER_LEFT", "CENTER", ..."""

    @property
    def coordinate_type(self) -> str:
        """Bounding box: "RATIO" or "PIXEL"."""

    @property
    def sample_rate(self) -> int:
        """Audio: sample rate."""

    @property
    def channels(self) -> int:
        """Audio: channel count."""

    @property
    def range(self) -> tuple[int, int] | None:
        """
        Inclusive (min, max) of the dimensions the content spans; None: all but the batch axis.
        """

class ProcessUnitInfo:
    """A processing step applied outside the graph (ProcessUnit)."""

    @property
    def kind(self) -> str:
        """
        "normalization", "score_calibration", "score_thresholding", "bert_tokenizer",
        "sentence_piece_tokenizer", "regex_tokenizer", "none" or "unknown".
        """

    @property
    def kind_code(self) -> int:
        """The raw union tag."""

    @property
    def mean(self) -> list[float]:
        """Normalization: per-channel mean."""

    @property
    def std(self) -> list[float]:
        """Normalization: per-channel standard deviation."""

    @property
    def score_transformation(self) -> str:
        """Score calibration: "IDENTITY", "LOG", "INVERSE_LOGISTIC"."""

    @property
    def default_score(self) -> float:
        """Score calibration: default score."""

    @property
    def global_score_threshold(self) -> float:
        """Score thresholding: threshold."""

    @property
    def delim_regex_pattern(self) -> str:
        """Regex tokenizer: delimiter pattern."""

    @property
    def vocab_files(self) -> list[AssociatedFileInfo]:
        """Tokenizers: vocabulary files."""

    @property
    def sentence_piece_models(self) -> list[AssociatedFileInfo]:
        """SentencePiece tokenizer: models."""

class TensorMetadataInfo:
    """Metadata of one input or output tensor."""

    @property
    def name(self) -> str:
        """The tensor's display name."""

    @property
    def description(self) -> str:
        """Description."""

    @property
    def dimension_names(self) -> list[str]:
        """Names of the dimensions."""

    @property
    def content(self) -> ContentInfo | None:
        """What the tensor holds, or None."""

    @property
    def process_units(self) -> list[ProcessUnitInfo]:
        """Processing steps."""

    @property
    def stats_max(self) -> list[float]:
        """Per-channel maximum (empty when absent)."""

    @property
    def stats_min(self) -> list[float]:
        """Per-channel minimum (empty when absent)."""

    @property
    def associated_files(self) -> list[AssociatedFileInfo]:
        """Files for this tensor (labels, ...)."""

class TensorGroupInfo:
    """A named group of tensors."""

    @property
    def name(self) -> str:
        """The group's name."""

    @property
    def tensor_names(self) -> list[str]:
        """Names of the tensors in the group."""

class CustomMetadataInfo:
    """A custom metadata entry (opaque to litelens)."""

    @property
    def name(self) -> str:
        """The entry's name."""

    @property
    def data(self) -> bytes:
        """The entry's bytes."""

class SubgraphMetadataInfo:
    """Metadata of one subgraph."""

    @property
    def name(self) -> str:
        """Name."""

    @property
    def description(self) -> str:
        """Description."""

    @property
    def inputs(self) -> list[TensorMetadataInfo]:
        """Input tensors, in the order of the subgraph's inputs."""

    @property
    def outputs(self) -> list[TensorMetadataInfo]:
        """Output tensors, in the order of the subgraph's outputs."""

    @property
    def associated_files(self) -> list[AssociatedFileInfo]:
        """Files for the subgraph."""

    @property
    def input_process_units(self) -> list[ProcessUnitInfo]:
        """Input processing steps."""

    @property
    def output_process_units(self) -> list[ProcessUnitInfo]:
        """Output processing steps."""

    @property
    def input_tensor_groups(self) -> list[TensorGroupInfo]:
        """Groups of input tensors."""

    @property
    def output_tensor_groups(self) -> list[TensorGroupInfo]:
        """Groups of output tensors."""

    @property
    def custom_metadata(self) -> list[CustomMetadataInfo]:
        """Custom entries."""

class ModelInfo:
    """The decoded TFLITE_METADATA entry."""

    @property
    def name(self) -> str:
        """The model's name."""

    @property
    def description(self) -> str:
        """Description."""

    @property
    def version(self) -> str:
        """The model's own version."""

    @property
    def author(self) -> str:
        """Author."""

    @property
    def license(self) -> str:
        """License."""

    @property
    def min_parser_version(self) -> str:
        """Oldest metadata parser that reads this entry."""

    @property
    def subgraphs(self) -> list[SubgraphMetadataInfo]:
        """Per-subgraph metadata."""

    @property
    def associated_files(self) -> list[AssociatedFileInfo]:
        """Files for the whole model."""

    def all_associated_files(self) -> list[AssociatedFileInfo]:
        """
        Every associated file named anywhere in the metadata, in document order, without duplicates.
        """

    def __repr__(self) -> str: ...

class ConversionInfo:
    """The decoded CONVERSION_METADATA entry."""

    @property
    def tensorflow_version(self) -> str:
        """TensorFlow version of the converter."""

    @property
    def api_version(self) -> int:
        """Converter API version."""

    @property
    def model_type(self) -> str:
        """"TF_SAVED_MODEL", "KERAS_MODEL", ..., "UNKNOWN(n)"."""

    @property
    def model_hash(self) -> int:
        """Hash of the source model."""

    @property
    def optimization_modes(self) -> list[str]:
        """"PTQ_FLOAT16", "PTQ_DYNAMIC_RANGE", ..."""

    @property
    def allow_custom_ops(self) -> bool:
        """Converter flag."""

    @property
    def enable_select_tf_ops(self) -> bool:
        """Converter flag."""

    @property
    def force_select_tf_ops(self) -> bool:
        """Converter flag."""

    @property
    def sparsity_block_sizes(self) -> list[list[int]]:
        """Block sizes used for sparsity."""

    @property
    def has_environment(self) -> bool:
        """True when the entry records an environment."""

    @property
    def has_options(self) -> bool:
        """True when the entry records converter options."""

class AssociatedFile:
    """A member of the ZIP archive appended to the model."""

    @property
    def name(self) -> str:
        """A safe relative path ("labels.txt")."""

    @property
    def offset(self) -> int:
        """Absolute file offset of the stored bytes."""

    @property
    def size(self) -> int:
        """Bytes once decompressed."""

    @property
    def compressed_size(self) -> int:
        """Bytes stored in the file."""

    @property
    def compression(self) -> int:
        """ZIP method: 0 stored, 8 deflate."""

    @property
    def compression_name(self) -> str:
        """"stored", "deflate" or "method N"."""

    @property
    def crc32(self) -> int:
        """CRC-32 recorded by the archive."""

    @property
    def header_offset(self) -> int:
        """
        Absolute file offset of the member's local header (``offset`` is where its data starts).
        """

    @property
    def is_supported(self) -> bool:
        """True when the member can be read (stored or deflate)."""

    def __repr__(self) -> str: ...

class PatchedTensor:
    """
    One tensor a patch changed (or left alone because the new bytes equal the old).
    """

    @property
    def selector(self) -> str:
        """The selector that led here."""

    @property
    def subgraph(self) -> int:
        """Index of the subgraph."""

    @property
    def tensor(self) -> int:
        """Index of the stored tensor that changed."""

    @property
    def name(self) -> str:
        """The stored tensor's name."""

    @property
    def via(self) -> list[str]:
        """
        DEQUANTIZE / DENSIFY ops followed from the selected tensor to the stored one.
        """

    @property
    def values(self) -> bool:
        """True when new values were given."""

    @property
    def quantization(self) -> bool:
        """True when new quantization parameters were given."""

    @property
    def unchanged(self) -> bool:
        """
        True when the new bytes equal the stored ones (and the quantization did not change).
        """

    @property
    def conversion(self) -> str:
        """
        How the values were stored: "copied", "quantized", "narrowed to float16", "packed to int4", ...
        """

    @property
    def buffer(self) -> int:
        """The buffer holding the values afterwards."""

    @property
    def split(self) -> bool:
        """True when the tensor got a new buffer because the old one is shared."""

    @property
    def bytes(self) -> int:
        """Stored bytes written."""

    @property
    def clamped(self) -> int:
        """Quantized values clamped to the type's range."""

    def __repr__(self) -> str: ...

class PatchReport:
    """What a patch wrote."""

    @property
    def tensors(self) -> list[PatchedTensor]:
        """The patched tensors (PatchedTensor), in the order given."""

    @property
    def warnings(self) -> list[str]:
        """
        One line per warning (buffer splits, clamped values, dropped trailing bytes).
        """

    @property
    def output_size(self) -> int:
        """Bytes of the patched model."""

    @property
    def flatbuffer_size(self) -> int:
        """Bytes of its FlatBuffer part."""

    @property
    def archive(self) -> bool:
        """True when an associated-file archive was carried over."""

    @property
    def archive_offsets_rewritten(self) -> bool:
        """True when the archive's absolute offsets were moved."""

    @property
    def outside_payloads(self) -> int:
        """Buffers written after the FlatBuffer."""

    def __repr__(self) -> str: ...

class ValueComparison:
    """
    How close two parameters' values are, compared as float64 after dequantization
    (A is the reference).
    """

    @property
    def count(self) -> int:
        """Elements compared."""

    @property
    def differing(self) -> int:
        """Elements that differ."""

    @property
    def nan_mismatch(self) -> int:
        """Pairs where exactly one side is NaN (left out of the metrics)."""

    @property
    def max_abs_diff(self) -> float:
        """max |a - b|."""

    @property
    def rel_error(self) -> float:
        """||a - b|| / ||a|| (0 when equal; inf when ||a|| is 0 and b is not)."""

    @property
    def cosine(self) -> float:
        """a.b / (||a|| ||b||) (1 when both are all zero; 0 when exactly one is)."""

    @property
    def norm_a(self) -> float:
        """||a||."""

    @property
    def norm_b(self) -> float:
        """||b||."""

    def __repr__(self) -> str: ...

class ParamInfo:
    """
    One side of a compared parameter: the stored tensor (or the op's input).
    """

    @property
    def tensor(self) -> int:
        """The stored tensor's index (the op input's when fed at run time)."""

    @property
    def name(self) -> str:
        """The tensor's name."""

    @property
    def shape(self) -> tuple[int, ...]:
        """The stored shape."""

    @property
    def dtype(self) -> str:
        """The stored dtype ("float16", ...)."""

    @property
    def quantization(self) -> Quantization | None:
        """Quantization parameters, or None."""

    @property
    def via(self) -> list[str]:
        """Ops followed to the stored tensor ("DEQUANTIZE", "DENSIFY")."""

    @property
    def runtime(self) -> bool:
        """True when the values are not in the file."""

    def __repr__(self) -> str: ...

class ParamDiff:
    """One parameter (by role) of a matched layer pair."""

    @property
    def role(self) -> str:
        """"filter", "bias", ..."""

    @property
    def a(self) -> ParamInfo | None:
        """The parameter in A (ParamInfo), or None when only B has it."""

    @property
    def b(self) -> ParamInfo | None:
        """The parameter in B (ParamInfo), or None when only A has it."""

    @property
    def shape_changed(self) -> bool:
        """The shapes differ."""

    @property
    def dtype_changed(self) -> bool:
        """The stored dtypes differ."""

    @property
    def quantization_changed(self) -> bool:
        """The quantization differs (scheme, scales, zero points or axis)."""

    @property
    def values(self) -> ValueComparison | None:
        """
        The value comparison (ValueComparison), or None when the values were not compared (see ``note``).
        """

    @property
    def bytes_equal(self) -> bool | None:
        """
        Stored bytes equal, for constants compared as bytes (strings, values that cannot be decoded); else None.
        """

    @property
    def note(self) -> str | None:
        """Why the values were not compared, or None."""

    @property
    def identical(self) -> bool:
        """Same shape, dtype, quantization and values."""

    def __repr__(self) -> str: ...

class LayerRef:
    """A layer of one of the compared models."""

    @property
    def subgraph(self) -> int:
        """Index of the subgraph."""

    @property
    def index(self) -> int:
        """The operator's index."""

    @property
    def key(self) -> str:
        """The layer key ("sg0.op12.CONV_2D")."""

    @property
    def op(self) -> str:
        """The op name."""

    @property
    def name(self) -> str:
        """The layer's name."""

    def __repr__(self) -> str: ...

class LayerDiff:
    """A matched pair of layers and their parameters compared."""

    @property
    def a(self) -> LayerRef:
        """The layer in A (LayerRef)."""

    @property
    def b(self) -> LayerRef:
        """The layer in B (LayerRef)."""

    @property
    def matched_by(self) -> str:
        """"name", "normalized_name", "name_stem" or "position"."""

    @property
    def params(self) -> list[ParamDiff]:
        """The parameters (ParamDiff), A's roles first."""

    @property
    def identical(self) -> bool:
        """Same op and every parameter identical."""

    def __repr__(self) -> str: ...

class ModelDiff:
    """
    The result of ``diff()``: the matched layers (iterate it, index it, or use ``layers``)
    and the layers found on one side only.
    """

    @property
    def layers(self) -> list[LayerDiff]:
        """The matched layers (LayerDiff), in A's order."""

    @property
    def only_in_a(self) -> list[LayerRef]:
        """Layers of A without a match (LayerRef)."""

    @property
    def only_in_b(self) -> list[LayerRef]:
        """Layers of B without a match (LayerRef)."""

    @property
    def subgraphs_a(self) -> int:
        """Subgraph count of A."""

    @property
    def subgraphs_b(self) -> int:
        """Subgraph count of B."""

    def __len__(self) -> int: ...

    def __getitem__(self, arg: int, /) -> LayerDiff: ...

    def __iter__(self) -> Iterator[LayerDiff]: ...

    def __repr__(self) -> str: ...
