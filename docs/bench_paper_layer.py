"""Time the paper's layer (c=256, 14x14, 3x3, 256 filters, pad 1, xnor) for the x86 targets
this CPU runs: median of many calls, batch 1, one thread. `python docs/bench_paper_layer.py`
for the scaled layer, `... core` for the integer core only (scale_weight/scale_input off).
onnxruntime fp32 is timed too if it is installed (optional; never a dependency)."""
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import numpy as np  # noqa: E402

import xnorgen  # noqa: E402
from netgen import write_net  # noqa: E402
from xnorgen.target import resolve, runs_here  # noqa: E402

d = tempfile.mkdtemp(prefix="xnorgen-bench-")
core = len(sys.argv) > 1
layer = {"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 256, "kernel": 3, "padding": 1, "scale_input": not core, "scale_weight": not core}
rng = np.random.default_rng(0)
net = xnorgen.load(write_net(d, "paper", (256, 14, 14), [layer], rng))
x = rng.standard_normal((256, 14, 14)).astype(np.float32)
ref = xnorgen.reference(net, x)
def bench(fn, n=300):
    for _ in range(20): fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6, min(ts) * 1e6
res = {}
for t in ["x86-64", "x86-64-avx2", "x86-64-avx512"]:
    if not runs_here(resolve(t)):
        print(t, "skipped: this CPU lacks", ", ".join(resolve(t).requires_cpu))
        continue
    lib = xnorgen.build(net, target=t)
    y = lib(x); assert np.abs(y - ref).max() <= 1e-4 * np.abs(ref).max()
    # call the C function directly (no Python-side batching), one arena
    ffi, infer = lib._mod.ffi, lib._infer
    arena = lib.new_arena(); out = np.empty(lib.output_shape, np.float32)
    ap, ip, op = ffi.cast("void *", arena.ctypes.data), ffi.from_buffer("float[]", x), ffi.from_buffer("float[]", out)
    res[t] = (bench(lambda: infer(ip, op, ap)), bench(lambda: lib(x), 100))
    print(t, "C call median %.1f us (min %.1f)" % res[t][0], "; lib(x) median %.1f us" % res[t][1][0])
if core: sys.exit()
try:
    import onnx, onnxruntime as ort
    from onnx import helper, TensorProto, numpy_helper
    w = np.sign(net.layer("conv").params["weight"]).astype(np.float32); w[w == 0] = 1
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256, 14, 14])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256, 14, 14])],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    for threads in (1, 2):
        so = ort.SessionOptions(); so.intra_op_num_threads = threads
        s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        xb = x[None]
        print(f"onnxruntime {ort.__version__} fp32 conv, {threads} thread(s): median %.1f us (min %.1f)" % bench(lambda: s.run(None, {"x": xb})))
except ImportError as e:
    print("onnxruntime not available:", e)
