"""`make demo`: the command line is taken from the Makefile (make's own dry run, with the built
CLI and the test's model cache), so this test follows the demo wherever it goes. It is run as is
and its text is checked layer by layer:

* against `litelens layers --json` with the same selection: the layer headers, each parameter's
  path through DEQUANTIZE, shape, dtype, layout and first values;
* against an independent reader (the `tflite` package and NumPy): one block per CONV_2D operator
  of the file, each weight's shape and DEQUANTIZE chain as the file has them, and the first values
  equal to the stored float16 constants widened by NumPy.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import layer_oracles as lo  # noqa: E402


def demo_command() -> list[str]:
    """`make demo`'s litelens command line, as make expands it for this CLI and model cache."""
    p = subprocess.run(["make", "-n", "--no-print-directory", "-C", lo.REPO, "demo", f"CLI={lo.CLI}",
                        f"LITELENS_CACHE={lo.CACHE}"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = [line for line in p.stdout.splitlines() if line.startswith(lo.CLI + " ")]
    assert len(lines) == 1, f"expected one litelens command in `make -n demo`:\n{p.stdout}"
    return shlex.split(lines[0])


@pytest.fixture(scope="module")
def demo():
    cmd = demo_command()
    assert cmd[1] == "layers", cmd
    model = cmd[2]
    if not os.path.exists(model):
        pytest.fail(f"{model} missing: run scripts/fetch-models.sh (make models)")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return cmd, model, p.stdout


def blocks(text: str) -> list[list[str]]:
    """The output split into one list of lines per layer (a layer starts at column 0)."""
    out = []
    for line in text.splitlines():
        if not line.startswith(" "):
            out.append([])
        out[-1].append(line)
    return out


def shown_values(first, size: int) -> str:
    """The values line of `layers`: indented, 6 significant digits, "..." when there are more."""
    return " " * 17 + "[" + ", ".join(f"{v:.6g}" for v in first) + (", ...]" if size > len(first) else "]")


def count_arg(cmd: list[str]) -> int:
    return int(cmd[cmd.index("--count") + 1]) if "--count" in cmd else 8


def test_demo_is_the_conv2d_job(demo):
    cmd, model, _ = demo
    assert os.path.basename(model) == "face_detection_short_range.tflite"
    assert cmd[cmd.index("--op") + 1] == "CONV_2D"


def test_demo_matches_layers_json(demo):
    cmd, model, text = demo
    selection = cmd[3:]
    json_layers = lo.layers_json(model, *selection)
    got = blocks(text)
    assert len(got) == len(json_layers) > 0
    n = count_arg(cmd)
    for block, layer in zip(got, json_layers):
        assert block[0] == f"{layer['key']}  {layer['op']}  {layer['name']}"
        for role, p in layer["params"].items():
            path = f"#{p['tensor']}" + "".join(f" <- {v}" for v in p["via"])
            if p["via"]:
                path += f" <- #{p['stored_tensor']}"
            head = f"  {role:<14} {path:<24} [{','.join(map(str, p['shape']))}] {p['dtype']}"
            if p["layout"]:
                head += f" {p['layout']}"
            (i,) = [k for k, line in enumerate(block) if line.startswith(f"  {role:<14} #")]
            assert block[i].startswith(head), (block[i], head)
            if p["runtime"]:
                assert block[i].endswith("(fed at run time)")
                continue
            first = p["first_values"]
            size = int(np.prod(p["shape"]))
            assert len(first) == min(n, size)
            assert block[i + 2] == shown_values(first, size), block[i + 2]


def test_demo_weights_against_the_file(demo):
    cmd, model, text = demo
    pkg = lo.PkgModel.load(model)
    convs = [op for op in pkg.ops(0) if op["op"] == "CONV_2D"]
    got = blocks(text)
    assert [b[0].split()[0] for b in got] == [f"sg0.op{op['index']}.CONV_2D" for op in convs]
    assert len(convs) == 21
    producers = pkg.producers(0)
    n = count_arg(cmd)
    for block, op in zip(got, convs):
        for role, tensor in zip(("filter", "bias"), op["inputs"][1:3]):
            # the file's chain: the op input is DEQUANTIZE's output, whose input is a float16 constant
            dq = producers[tensor]
            assert dq["op"] == "DEQUANTIZE" and not pkg.is_constant(0, tensor)
            stored = pkg.tensor(0, dq["inputs"][0])
            assert stored["type"] == 1  # FLOAT16
            (line,) = [k for k, line in enumerate(block) if line.startswith(f"  {role:<14} #")]
            want_path = f"#{tensor} <- DEQUANTIZE <- #{stored['index']}"
            m = re.match(rf"  {role:<14} (.+?) +\[([0-9,]+)\] float16 (OHWI|O)$", block[line])
            assert m, block[line]
            assert m.group(1) == want_path
            assert [int(d) for d in m.group(2).split(",")] == stored["shape"]
            assert m.group(3) == ("OHWI" if role == "filter" else "O")
            values = np.frombuffer(stored["raw"], np.float16).astype(np.float32)
            assert values.size == int(np.prod(stored["shape"]))
            assert block[line + 2] == shown_values(values[:n], values.size)
    # the first convolution, pinned: a 5x5 stride-2 filter over the RGB input
    assert got[0][0] == "sg0.op2.CONV_2D  CONV_2D  conv2d"
    assert "padding=SAME stride_w=2 stride_h=2" in got[0][1]
    assert got[0][3].startswith("  filter         #224 <- DEQUANTIZE <- #1 [24,5,5,3] float16 OHWI")
