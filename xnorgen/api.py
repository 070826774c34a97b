"""The Python API of contract section 5: load, reference, build, simulate."""
from __future__ import annotations

from xnorgen.toolchain.loader import load_module
from xnorgen import compiler
from xnorgen.frontend.description import read_description
from xnorgen.frontend.graph import Network, build_graph
from xnorgen.reference import reference  # noqa: F401  (re-exported)
from xnorgen.toolchain.runtime import CompiledNetwork
from xnorgen.frontend.weights import attach_weights


def load(path, weights: bool = True, weights_file=None) -> Network:
    """Read, validate and shape-check net.yaml; with weights=True also load and check its .npz
    (weights_file: that .npz instead of the one the description names). An .onnx model is
    imported first (xnorgen.interop.onnx_import) and then checked the same way."""
    from pathlib import Path
    if str(path).lower().endswith(".onnx"):
        from xnorgen.errors import XnorgenError
        from xnorgen.frontend.description import parse_description
        from xnorgen.interop.onnx_import import import_onnx
        if weights_file is not None:
            raise XnorgenError(str(path), "--weights does not apply to an .onnx model (its weights are inside)")
        doc, arrays = import_onnx(path)
        net = build_graph(parse_description(doc, Path(path)))
        if weights:
            attach_weights(net, arrays)
        return net
    net = build_graph(read_description(path, weights=weights_file))
    if weights:
        attach_weights(net)
    return net


def compile_network(net: Network, target="host", fuse: bool = True):
    """compiler.compile_network with the simulator's predicted cycles in manifest.json:
    returns (plan, {file name: text})."""
    from xnorgen.sim.costmodel import predict
    return compiler.compile_network(net, target, fuse=fuse, annotate=[predict])


def build(net: Network | str, target: str = "host", fuse: bool = True, threads: int | None = 1) -> CompiledNetwork:
    """Compile for a target this machine runs, load with cffi, return a callable.
    fuse=False turns off the batchnorm/binarize fusions (a debugging switch; same numbers).
    threads: cores a batch is spread over (None: all this process may use); the same bits as 1."""
    if not isinstance(net, Network):
        net = load(net)
    plan, files = compile_network(net, target, fuse=fuse)
    return CompiledNetwork(plan, files, load_module(net.name, files, plan.target), threads=threads)


def train(net: Network | str, data="digits", *, out=None, epochs: int = 30, seed: int = 0, **options):
    """Train NET's weights with the XNOR-Net paper's Algorithm 1 (see xnorgen.train_ops, xnorgen.trainer).

    data: "digits" (scikit-learn's 8x8 digits; the `train` extra) or an .npz with X and y.
    options: batch_size, lr, optimizer ("auto", "sgd", "adam"), learn_alpha, progress, stream.
    Writes the .npz to `out` if given; returns a TrainResult (weights, accuracies, seconds, history).
    """
    from xnorgen.training.trainer import fit, save_weights
    from xnorgen.training.data import load_dataset

    if not isinstance(net, Network):
        net = load(net, weights=False)
    result = fit(net, load_dataset(data, net.input_shape), epochs=epochs, seed=seed, **options)
    if out is not None:
        save_weights(out, result.weights)
    return result


def simulate(net: Network | str, target: str = "host", report: str = "cycles", x=None, sweep: str | None = None) -> dict:
    """The simulator (issue 3): report speedup (paper model), cycles (target model) or memory.

    net may be a path; weights are needed only for a functional run (x given). See docs/simulator.md.
    """
    from xnorgen.sim.report import simulate as _simulate
    return _simulate(net, target=target, report=report, x=x, sweep=sweep)


def run_on_target(net: Network | str, x, target: str = "host", fuse: bool = True, threads: int | None = 1):
    """Outputs of one sample or a batch computed by `target`'s own code: loaded with cffi where
    this machine runs it, a C harness under the target's `run` prefix (armv8: qemu-aarch64), or a
    firmware image on the emulated part (cortex-m4: qemu-system-arm). The bits are the target's:
    they equal the simulator's functional run for that target (tests/test_firmware.py)."""
    import tempfile

    import numpy as np

    from xnorgen.errors import XnorgenError
    from xnorgen.reference import split_batch
    from xnorgen.target import executes_here, resolve, runs_here
    from xnorgen.toolchain import cross, firmware

    if not isinstance(net, Network):
        net = load(net)
    t = resolve(target)
    if runs_here(t):
        return build(net, t, fuse=fuse, threads=threads)(x)
    samples, is_batch = split_batch(net, x)
    if not (firmware.can_run(t) or executes_here(t)):
        raise XnorgenError(f"target {t.name}", "cannot run on this machine: it needs "
                           f"{' and '.join(dict.fromkeys([t.cc, *(t.run[:1] or ['its hardware'])]))}")
    _, files = compiler.compile_network(net, t, fuse=fuse)
    with tempfile.TemporaryDirectory(prefix="xnorgen-run-") as d:
        cross.make_library(files, d, t)
        if firmware.can_run(t):
            y = firmware.run_firmware(firmware.build_firmware(d, net.name, t), t, samples)
        else:
            y = cross.run_harness(cross.build_harness(d, net.name, t), t, samples)
    y = np.asarray(y, dtype=np.float32).reshape((len(samples),) + tuple(net.output_shape))
    return y if is_batch else y[0]
