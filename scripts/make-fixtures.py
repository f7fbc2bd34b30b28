#!/usr/bin/env python3
"""Builds small Keras models with fixed weights and converts them with TensorFlow's TFLite
converter, for the layer tests (tests/python/test_layers_fixtures.py).

Output, outside git:  ${LITELENS_CACHE:-~/.cache/litelens}/fixtures/
  <arch>_<mode>.tflite   one per (architecture, quantization mode) the converter handles
  <arch>_keras.npz       the Keras weights, keyed "<layer name>/<weight>" (kernel, bias,
                         recurrent_kernel), in Keras's own layouts
  <arch>_<mode>.conversion.json
                         what TensorFlow's own reader of CONVERSION_METADATA
                         (tensorflow.lite.python.util.get_conversion_metadata) finds in the
                         model, enum codes also by their names in TensorFlow's generated schema
                         module; the expectation of tests/python/test_metadata.py
  manifest.json          what was built: architectures, layers, modes, input shapes, versions
  .stamp                 the version stamp; when it matches (and every file is present) the
                         script exits at once without importing TensorFlow

Architectures
  convnet  image 8x8x16 -> Conv2D "conv_bias" (3x3, 64, bias) -> DepthwiseConv2D "dw" (3x3,
           depth_multiplier 2) -> Conv2D "conv_nobias" (1x1, 16, no bias) -> Conv2DTranspose
           "deconv" (3x3, 16, stride 2) -> Flatten -> Dense "dense" (10)
  lstm     sequence 4x40 -> LSTM "lstm" (32 units); the converter fuses it into
           UNIDIRECTIONAL_SEQUENCE_LSTM (tf_keras only: Keras 3 layers become a WHILE loop)
  conv3d   volume 6x6x6x8 -> Conv3D "conv3d" (3x3x3, 8) -> Conv3DTranspose "deconv3d" (2x2x2, 4,
           stride 2)
Every weight tensor of convnet and lstm has more than 1024 elements, so that dynamic-range
quantization, which skips smaller tensors, quantizes them all (depthwise: 3*3*64*2).

Modes (post-training quantization)
  float32   no optimization
  fp16      float16 weights, each behind a DEQUANTIZE op
  dynamic   dynamic range: int8 weights with per-channel scales, float activations
  int8      full integer, per-channel int8 weights, int32 biases (representative dataset)
  int16x8   int16 activations, int8 weights, int64 biases
Combinations the converter cannot do (or does not quantize) are left out and listed in
manifest.json under "skipped": conv3d has no dynamic/int8/16x8 kernels (the converter keeps it
float32), and the fused LSTM has no 16x8 mode.

Usage: scripts/make-fixtures.py [--force] [--out DIR]
Needs TensorFlow and tf_keras (scripts/install-deps.sh --fixtures). TensorFlow is used only here.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import sys
import tempfile
import time

# Bump when the models, weights or modes change: cached fixtures are rebuilt.
FIXTURE_VERSION = 5
ARCHS = ("convnet", "lstm", "conv3d")
MODES = ("float32", "fp16", "dynamic", "int8", "int16x8")
SKIPPED = {
    ("conv3d", "dynamic"): "the converter keeps CONV_3D float32 (no hybrid kernel)",
    ("conv3d", "int8"): "the converter keeps CONV_3D float32 (no int8 kernel)",
    ("conv3d", "int16x8"): "16x8 quantization is not supported for CONV_3D",
    ("lstm", "int16x8"): "16x8 quantization is not supported for UNIDIRECTIONAL_SEQUENCE_LSTM",
}


def log(msg: str) -> None:
    print(f"make-fixtures: {msg}", file=sys.stderr, flush=True)


def versions() -> dict:
    out = {"fixture_version": FIXTURE_VERSION}
    for pkg in ("tensorflow", "tf_keras", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def default_dir() -> str:
    cache = os.environ.get("LITELENS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "litelens")
    return os.path.join(cache, "fixtures")


def up_to_date(out_dir: str) -> bool:
    try:
        with open(os.path.join(out_dir, ".stamp")) as f:
            stamp = json.load(f)
        with open(os.path.join(out_dir, "manifest.json")) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    if stamp != versions():
        return False
    files = [m["file"] for m in manifest["models"]] + [a["weights"] for a in manifest["architectures"].values()]
    files += [m.get("conversion_metadata", "missing") for m in manifest["models"]]
    return all(os.path.isfile(os.path.join(out_dir, f)) for f in files)


def write_atomic(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# Models (TensorFlow is imported only below this line, inside functions)


def build(arch: str, keras, np):
    """The Keras model of `arch` with deterministic weights, and its input shape."""
    L = keras.layers
    if arch == "convnet":
        shape = (1, 8, 8, 16)
        inp = keras.Input(shape[1:], batch_size=1, name="image")
        x = L.Conv2D(64, 3, padding="same", name="conv_bias")(inp)
        x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
        x = L.Conv2D(16, 1, use_bias=False, name="conv_nobias")(x)
        x = L.Conv2DTranspose(16, 3, strides=2, padding="same", name="deconv")(x)
        x = L.Flatten(name="flat")(x)
        out = L.Dense(10, name="dense")(x)
    elif arch == "lstm":
        shape = (1, 4, 40)
        inp = keras.Input(shape[1:], batch_size=1, name="sequence")
        out = L.LSTM(32, name="lstm")(inp)
    elif arch == "conv3d":
        shape = (1, 6, 6, 6, 8)
        inp = keras.Input(shape[1:], batch_size=1, name="volume")
        x = L.Conv3D(8, 3, name="conv3d")(inp)
        out = L.Conv3DTranspose(4, 2, strides=2, name="deconv3d")(x)
    else:
        raise ValueError(arch)
    model = keras.Model(inp, out, name=arch)
    # Weights from our own generator (not the initializers): kernels ~ N(0, 0.2), biases
    # ~ N(0, 0.5) so that no bias is all zeros.
    rng = np.random.default_rng(20240 + ARCHS.index(arch))
    weights = {}
    for layer in model.layers:
        names = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
        if not names:
            continue
        values = []
        for n, w in zip(names, layer.get_weights()):
            std = 0.5 if n == "bias" else 0.2
            v = rng.normal(0.0, std, w.shape).astype(np.float32)
            values.append(v)
            weights[f"{layer.name}/{n}"] = v
        layer.set_weights(values)
    return model, shape, weights


def convert(model, shape, mode: str, tf, np) -> bytes:
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "fp16":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode in ("int8", "int16x8"):
        c.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative():
            rng = np.random.default_rng(99)
            for _ in range(16):
                yield [rng.normal(0.0, 1.0, shape).astype(np.float32)]

        c.representative_dataset = representative
        c.target_spec.supported_ops = (
            [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] if mode == "int8"
            else [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8])
    elif mode != "float32":
        raise ValueError(mode)
    return c.convert()


def conversion_metadata(data: bytes) -> dict | None:
    """CONVERSION_METADATA of a converted model as TensorFlow reads it (None when absent)."""
    from tensorflow.lite.python import conversion_metadata_schema_py_generated as schema
    from tensorflow.lite.python import util

    found = util.get_conversion_metadata(data)
    if found is None:
        return None

    def names(enum) -> dict:
        return {v: k for k, v in vars(enum).items() if not k.startswith("_")}

    model_types, modes = names(schema.ModelType), names(schema.ModelOptimizationMode)
    out = {"environment": None, "options": None}
    if (env := found.environment) is not None:
        version = env.tensorflowVersion
        out["environment"] = {
            "tensorflow_version": version.decode() if isinstance(version, bytes) else version,
            "api_version": int(env.apiVersion),
            "model_type": model_types.get(int(env.modelType), f"UNKNOWN({int(env.modelType)})"),
            "model_hash": int(env.modelHash),
        }
    if (opt := found.options) is not None:
        codes = [] if opt.modelOptimizationModes is None else [int(c) for c in opt.modelOptimizationModes]
        out["options"] = {
            "model_optimization_modes": [modes.get(c, f"UNKNOWN({c})") for c in codes],
            "model_optimization_mode_codes": codes,
            "allow_custom_ops": bool(opt.allowCustomOps),
            "enable_select_tf_ops": bool(opt.enableSelectTfOps),
            "force_select_tf_ops": bool(opt.forceSelectTfOps),
            "sparsity_block_sizes": [[int(v) for v in (b.values if b.values is not None else [])]
                                     for b in (opt.sparsityBlockSizes or [])],
        }
    return out


def generate(out_dir: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.keras = tf_keras (Keras 2), which fuses LSTM
    t0 = time.time()
    try:
        import numpy as np
        import tensorflow as tf
        import tf_keras as keras
    except ImportError as e:
        log(f"cannot import TensorFlow/tf_keras ({e}): run scripts/install-deps.sh --fixtures")
        sys.exit(1)
    tf.get_logger().setLevel("ERROR")
    keras.utils.set_random_seed(1234)
    log(f"TensorFlow {tf.__version__} imported in {time.time() - t0:.1f}s")
    os.makedirs(out_dir, exist_ok=True)
    manifest = {"versions": versions(), "architectures": {}, "models": [], "skipped": []}
    for arch in ARCHS:
        model, shape, weights = build(arch, keras, np)
        npz = f"{arch}_keras.npz"
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".tmp-", suffix=".npz")
        os.close(fd)
        np.savez(tmp, **weights)
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(out_dir, npz))
        manifest["architectures"][arch] = {
            "weights": npz,
            "input_shape": list(shape),
            "layers": sorted({k.split("/")[0] for k in weights}),
            "arrays": {k: list(v.shape) for k, v in sorted(weights.items())},
        }
        for mode in MODES:
            if (arch, mode) in SKIPPED:
                manifest["skipped"].append({"arch": arch, "mode": mode, "reason": SKIPPED[(arch, mode)]})
                continue
            t = time.time()
            data = convert(model, shape, mode, tf, np)
            name = f"{arch}_{mode}.tflite"
            write_atomic(os.path.join(out_dir, name), data)
            sidecar = f"{arch}_{mode}.conversion.json"
            write_atomic(os.path.join(out_dir, sidecar),
                         (json.dumps(conversion_metadata(data), indent=1) + "\n").encode())
            manifest["models"].append({"file": name, "arch": arch, "mode": mode, "bytes": len(data),
                                       "conversion_metadata": sidecar})
            log(f"{name}: {len(data)} bytes in {time.time() - t:.1f}s")
    write_atomic(os.path.join(out_dir, "manifest.json"), (json.dumps(manifest, indent=1) + "\n").encode())
    write_atomic(os.path.join(out_dir, ".stamp"), json.dumps(versions()).encode())
    log(f"{len(manifest['models'])} fixtures in {out_dir} ({time.time() - t0:.0f}s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    ap.add_argument("--out", default=default_dir(), help="output folder (default: %(default)s)")
    args = ap.parse_args()
    if not args.force and up_to_date(args.out):
        log(f"fixtures up to date in {args.out}")
        print(args.out)
        return
    generate(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
