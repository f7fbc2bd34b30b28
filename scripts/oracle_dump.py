#!/usr/bin/env python3
"""Print JSON describing MODEL.tflite as two independent oracles see it.

Thin CLI over tests/python/oracles.py (shared with tests/python/test_real_models.py):
  "tflite_pkg": the PyPI `tflite` FlatBuffers bindings (parser view)
  "litert":     the PyPI `ai-edge-litert` interpreter (runtime view)
  "summary":    derived facts (fp16, sparsity, custom ops, metadata, counts)

Usage: scripts/oracle_dump.py MODEL.tflite [--no-litert] [--summary] [-o OUT.json]
Needs: pip install numpy ai-edge-litert tflite
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))

from oracles import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
