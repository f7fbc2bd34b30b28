#!/usr/bin/env python3
"""Makes the benchmarks' int8 model: a MobileNet-sized Keras model converted by TensorFlow's
TFLite converter with full integer quantization (int8 weights with per-channel scales, int32
biases, int8 activations).

The model is Keras' MobileNetV2 (224x224x3, alpha 1.0, 1000 classes: 3.5 M parameters, 52
CONV_2D layers) with its random initial weights: no weights are downloaded. The representative
dataset is random too; the values do not matter for reading speed, only the layout does.

Output, outside git:  ${LITELENS_CACHE:-~/.cache/litelens}/bench/mobilenet_v2_int8.tflite
Reused when present (delete it to rebuild). Needs TensorFlow and tf_keras
(scripts/install-deps.sh --fixtures); TensorFlow is imported only when the file is missing.

Usage: bench/make_int8_model.py [--out PATH]   (prints the path)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def default_path() -> str:
    cache = os.environ.get("LITELENS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "litelens")
    return os.path.join(cache, "bench", "mobilenet_v2_int8.tflite")


def build(out: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(6)
    keras.utils.set_random_seed(6)
    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None, classes=1000)
    rng = np.random.default_rng(6)

    def representative():
        for _ in range(8):
            yield [rng.uniform(-1.0, 1.0, size=(1, 224, 224, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data = converter.convert()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out), suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=default_path())
    args = ap.parse_args()
    if not os.path.exists(args.out):
        t = time.time()
        print(f"make_int8_model: converting MobileNetV2 (random weights) to {args.out}", file=sys.stderr)
        build(args.out)
        print(f"make_int8_model: done in {time.time() - t:.0f} s", file=sys.stderr)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
