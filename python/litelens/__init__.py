"""litelens: read TensorFlow Lite / LiteRT models and their layer parameters as NumPy arrays.

The package is a thin layer over the litelens C++ library (the same core as the ``litelens``
command): it opens and validates ``.tflite`` files, lists subgraphs, tensors, operators,
signatures and metadata, resolves each layer's parameters to the constants that hold them
(through DEQUANTIZE and DENSIFY), decodes them to NumPy, and exports them; it also writes new
values or quantization parameters back (:func:`patch`) and compares two models (:func:`diff`).

Quick start::

    import litelens

    with litelens.open("model.tflite") as model:
        for layer in model.layers(op="CONV_2D"):
            w = layer.params["filter"]
            print(layer.name, w.shape, w.dtype, w.layout)

    weights, biases = litelens.conv2d_params("model.tflite")

Errors: a file that cannot be read raises :class:`Error` (with ``kind``, ``path``, ``offset``
and ``message``); lookups raise ``KeyError`` (names) and ``IndexError`` (indices); a patch that
cannot be applied raises :class:`PatchError` (a ``ValueError``; :class:`UnknownSelectorError`,
also a ``KeyError``, for a selector that matches nothing).

See docs/python.md for the full guide.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._litelens import (
    AssociatedFile,
    AssociatedFileInfo,
    ContentInfo,
    ConversionInfo,
    CustomMetadataInfo,
    Error,
    ExportReport,
    ExternalData,
    Layer,
    LayerDiff,
    LayerRef,
    Model,
    ModelDiff,
    ModelInfo,
    ModelWarning,
    Operator,
    Param,
    ParamDiff,
    ParamInfo,
    PatchedTensor,
    PatchReport,
    ProcessUnitInfo,
    Quantization,
    Signature,
    Subgraph,
    SubgraphMetadataInfo,
    Tensor,
    TensorGroupInfo,
    TensorMetadataInfo,
    ValueComparison,
)
from ._litelens import __version__  # the library's, from the repository's VERSION file
from ._litelens import _register_patch_errors

__all__ = [
    "AssociatedFile",
    "AssociatedFileInfo",
    "ContentInfo",
    "ConversionInfo",
    "CustomMetadataInfo",
    "Error",
    "ExportReport",
    "ExternalData",
    "Layer",
    "LayerDiff",
    "LayerRef",
    "Model",
    "ModelDiff",
    "ModelInfo",
    "ModelWarning",
    "Operator",
    "Param",
    "ParamDiff",
    "ParamInfo",
    "PatchError",
    "PatchReport",
    "PatchedTensor",
    "ProcessUnitInfo",
    "Quantization",
    "Signature",
    "Source",
    "Subgraph",
    "SubgraphMetadataInfo",
    "Tensor",
    "TensorGroupInfo",
    "TensorMetadataInfo",
    "UnknownSelectorError",
    "ValueComparison",
    "__version__",
    "conv2d_params",
    "diff",
    "extract",
    "open",
    "patch",
]

#: The type of what :func:`open` accepts (for annotations): a path (``str`` or ``os.PathLike``),
#: which is memory-mapped, or the model's bytes (``bytes``, ``bytearray``, ``memoryview``), which
#: are copied. A typing alias has no docstring of its own (setting one would change typing's
#: cached Union object for everyone), so this comment is its documentation.
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]

_BYTES_TYPES = (bytes, bytearray, memoryview)


class PatchError(ValueError):
    """A patch that cannot be applied as asked (a ``ValueError``). Nothing was written.

    Attributes:
        kind: stable lowercase name of the problem: ``"unknown_selector"``,
            ``"ambiguous_selector"``, ``"not_constant"``, ``"shape_mismatch"``,
            ``"dtype_mismatch"``, ``"value_out_of_range"``, ``"sparsity_mismatch"``,
            ``"bad_quantization"``, ``"unsupported"``, ``"duplicate"``, ``"in_place_required"``,
            ``"bad_values_file"`` or ``"manifest_mismatch"``.
    """

    kind: str = ""


class UnknownSelectorError(PatchError, KeyError):
    """A patch selector that matches no tensor or layer parameter.

    Both a :class:`PatchError` (so a ``ValueError``) and a ``KeyError``; the message lists close
    tensor names. ``kind`` is ``"unknown_selector"``.
    """


_register_patch_errors(PatchError, UnknownSelectorError)


def open(source: Source, *, label: Optional[str] = None) -> Model:  # noqa: A001 - mirrors io.open
    """Opens and validates a model.

    Args:
        source: a path (``str`` or ``os.PathLike``), which is memory-mapped read-only, or the
            model's bytes (``bytes``, ``bytearray``, ``memoryview``), which are copied.
        label: for bytes, the name used in error messages (default ``"<memory>"``).

    Returns:
        The :class:`Model`; use it as a context manager (``with litelens.open(p) as m:``).

    Raises:
        Error: the file cannot be read or is not a valid model.
        TypeError: ``source`` is neither a path nor bytes.
    """
    if isinstance(source, _BYTES_TYPES):
        return Model.from_bytes(source, label if label is not None else "<memory>")
    if isinstance(source, (str, os.PathLike)):
        return Model.open(os.fspath(source))
    raise TypeError(f"litelens.open() needs a path or bytes, not {type(source).__name__}")


def _model_of(source: Union[Source, Model]) -> Tuple[Model, bool]:
    """The model for ``source`` and whether we opened it (and so should close it)."""
    if isinstance(source, Model):
        return source, False
    return open(source), True


def conv2d_params(
    path: Union[Source, Model], layer_name: Optional[str] = None
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """The weights and biases of a CONV_2D layer, as the convolution consumes them.

    This answers the well-known question "how do I get a Conv2D layer's weights out of a
    .tflite file" correctly for float, fp16, int8/uint8, sparse and custom-op models.

    Args:
        path: the model's path (``str`` or ``os.PathLike``); its bytes or an open
            :class:`Model` are accepted too.
        layer_name: which CONV_2D layer. A layer whose name (or one of its fused parts) equals
            ``layer_name`` wins, then one with a parameter tensor of that name; otherwise the
            name is a pattern (a glob when it holds ``*?[``, else a substring). Whichever rule
            decides must single out one layer. ``None`` takes the first CONV_2D layer.

    Returns:
        ``(weights, biases)`` as NumPy arrays in the file's layout (OHWI weights); ``biases``
        is ``None`` when the layer has none. The values are those the convolution consumes:

        - int8 or uint8 (with int32 biases) for a quantized convolution;
        - float32 for a float convolution, widened from float16 exactly when the filter is
          stored as fp16 behind a DEQUANTIZE op;
        - dense when the filter is stored sparse (behind DENSIFY).

    Raises:
        KeyError: no CONV_2D layer matches (the message lists the closest names), or a
            pattern matches several layers.
        ValueError: the filter is fed at run time, so the file holds no values for it.
        Error: the file cannot be read.
    """
    m, opened = _model_of(path)
    try:
        if layer_name is None:
            found = m.layers(op="CONV_2D")
            if not found:
                raise KeyError(f"{m.path}: the model has no CONV_2D layer")
        else:
            exact = m.layers(op="CONV_2D", name=layer_name, exact=True)
            own = [layer for layer in exact if layer_name == layer.name or layer_name in layer.name_parts]
            found = own or exact or m.layers(op="CONV_2D", name=layer_name)
            if not found:
                close = m.closest_layer_names(layer_name, op="CONV_2D")
                hint = f"; closest names: {', '.join(close)}" if close else ""
                raise KeyError(f"{m.path}: no CONV_2D layer matches {layer_name!r}{hint}")
            if len(found) > 1:
                names = ", ".join(layer.name or layer.key for layer in found[:5])
                more = ", ..." if len(found) > 5 else ""
                raise KeyError(
                    f"{m.path}: {layer_name!r} matches {len(found)} CONV_2D layers ({names}{more}); "
                    "pass an exact name"
                )
        layer = found[0]
        weights = layer.params["filter"].consumed()
        bias = layer.params.get("bias")
        return weights, (bias.consumed() if bias is not None else None)
    finally:
        if opened:
            m.close()


def extract(
    model: Union[Source, Model],
    output: Union[str, "os.PathLike[str]"],
    *,
    op: Union[str, Sequence[str], None] = None,
    name: Optional[str] = None,
    index: Optional[int] = None,
    subgraph: Optional[int] = None,
    exact: bool = False,
    first: bool = False,
    format: Optional[str] = None,  # noqa: A002 - mirrors the CLI's --format
    dequantize: bool = False,
    layout: str = "tflite",
    all_ops: bool = False,
) -> ExportReport:
    """Exports layer parameters to a file: ``litelens extract MODEL ... -o OUTPUT`` in Python.

    Args:
        model: a path, the model's bytes, or an open :class:`Model`.
        output: ``.npz`` (default format), ``.safetensors``, ``.json``, ``.h``, or a folder
            (``.npy`` files).
        op, name, index, subgraph, exact: the layer selection, as for :meth:`Model.layers`.
        first: only the first matching layer (the CLI's ``--first``).
        format: ``"npz"``, ``"npy"``, ``"safetensors"``, ``"json"`` or ``"c"``; default: from
            the output's extension.
        dequantize: write float32 values instead of the stored ones.
        layout: ``"tflite"``, ``"keras"`` or ``"torch"``.
        all_ops: also export the inputs of DEQUANTIZE and DENSIFY layers.

    Returns:
        An :class:`ExportReport` (arrays and bytes written).

    Raises:
        KeyError: nothing matches the selection.
        Error: the model cannot be read or the output cannot be written.
    """
    m, opened = _model_of(model)
    try:
        return m.extract(
            output,
            op=op,
            name=name,
            index=index,
            subgraph=subgraph,
            exact=exact,
            first=first,
            format=format,
            dequantize=dequantize,
            layout=layout,
            all_ops=all_ops,
        )
    finally:
        if opened:
            m.close()


def patch(
    model: Union[Source, Model],
    output: Union[str, "os.PathLike[str]"],
    values: Optional[Mapping[str, Any]] = None,
    quantization: Optional[Mapping[str, Any]] = None,
    *,
    quantize: bool = False,
    layout: str = "tflite",
    subgraph: Optional[int] = None,
    in_place: bool = False,
) -> PatchReport:
    """Writes a patched copy of a model: ``litelens patch MODEL -o OUTPUT ...`` in Python.

    Args:
        model: a path, the model's bytes, or an open :class:`Model`.
        output: the patched model's path.
        values, quantization, quantize, layout, subgraph, in_place: as for :meth:`Model.patch`
            (selector -> NumPy array; selector -> ``{"scale": [...], "zero_point": [...],
            "axis": 0}``).

    Returns:
        A :class:`PatchReport` (patched tensors, warnings, output size).

    Raises:
        UnknownSelectorError: a selector matches nothing (also a ``KeyError``).
        PatchError: the patch cannot be applied as asked (a ``ValueError``; see ``kind``).
        Error: the model cannot be read or the output cannot be written.
    """
    m, opened = _model_of(model)
    try:
        return m.patch(output, values, quantization, quantize=quantize, layout=layout, subgraph=subgraph,
                       in_place=in_place)
    finally:
        if opened:
            m.close()


def diff(
    a: Union[Source, Model],
    b: Union[Source, Model],
    *,
    values: bool = True,
    subgraph: Optional[int] = None,
) -> ModelDiff:
    """Compares two models parameter by parameter: ``litelens diff A B`` in Python.

    Args:
        a: the reference model: a path, bytes, or an open :class:`Model`.
        b: the model compared with it (same forms).
        values: compare the values too (``False``: shapes, dtypes and quantization only).
        subgraph: only this subgraph of both models.

    Returns:
        A :class:`ModelDiff`: iterate it for the matched layers (:class:`LayerDiff`, each with
        ``params``: :class:`ParamDiff` with ``shape_changed``, ``dtype_changed``,
        ``quantization_changed``, ``values`` (max_abs_diff, rel_error, cosine, ...) and
        ``identical``); ``only_in_a`` and ``only_in_b`` list unmatched layers.

    Raises:
        Error: a model cannot be read.
        IndexError: ``subgraph`` does not exist in one of the models.
    """
    ma, opened_a = _model_of(a)
    try:
        mb, opened_b = _model_of(b)
        try:
            return ma.diff(mb, values=values, subgraph=subgraph)
        finally:
            if opened_b:
                mb.close()
    finally:
        if opened_a:
            ma.close()


def __dir__() -> list:
    """What ``dir(litelens)`` lists: the API (``__all__``), not the helpers it imports."""
    return sorted(__all__)
