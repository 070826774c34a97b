"""The xnorgen command line (contract section 4)."""
from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import click
import numpy as np

from xnorgen.errors import XnorgenError, one_line
from xnorgen.frontend.userfiles import read_npy


def _user_errors(fn):
    """The CLI's one error boundary (contract sections 4 and 7): whatever goes wrong inside a
    command ends as one `error: <where>: <what>` line and exit status 2, user strings escaped so
    they cannot break the line. A bug in xnorgen says so on that line, with the exception's type;
    XNORGEN_DEBUG=1 shows its traceback instead."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BaseException as e:      # noqa: B036 -- every way out becomes one line
            if isinstance(e, (SystemExit, KeyboardInterrupt)) or os.environ.get("XNORGEN_DEBUG") == "1":
                raise
            where, what = _describe(e)
            click.echo(f"error: {one_line(where)}: {one_line(what)}", err=True)
            sys.exit(2)
    return wrapper


def _describe(e: BaseException) -> tuple[str, str]:
    """(where, what) of an exception that reached the CLI boundary."""
    if isinstance(e, XnorgenError):
        return e.where, e.what
    if isinstance(e, OSError):
        return str(e.filename or "I/O"), e.strerror or str(e)
    if isinstance(e, MemoryError):
        return "memory", "out of memory (the input is larger than this machine can hold)"
    first = (str(e).strip().splitlines() or [""])[0][:200]
    return "internal error", (f"{type(e).__name__}: {first} (a bug in xnorgen: please report it with "
                              "the command; XNORGEN_DEBUG=1 shows the traceback)")


class _OneLineGroup(click.Group):
    """Usage mistakes (an unknown option, a missing argument) as one `error:` line too, exit 2."""

    def main(self, *args, **kwargs):
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as e:
            where = e.ctx.command_path if getattr(e, "ctx", None) else "xnorgen"
            click.echo(f"error: {one_line(where)}: {one_line(e.format_message())} (see --help)", err=True)
            sys.exit(2)
        except click.exceptions.Abort:
            click.echo("error: xnorgen: aborted", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="xnorgen")
def main():
    """xnorgen: compile binarized (XNOR-Net / BWN) networks to plain-C libraries."""
    warnings.showwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings about the user's input as `warning: <where>: <what>`, like errors, without source lines."""
    click.echo(f"warning: {one_line(str(message))}", err=True)


_WEIGHTS = click.option("--weights", "weights_path", type=click.Path(dir_okay=False), default=None,
                        help="weights .npz to use instead of the one the description names")


@main.command(name="import")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="the net.yaml to write; its weights go beside it as <stem>.npz")
@click.option("--force", is_flag=True, help="replace NET.yaml / NET.npz if they exist")
@_user_errors
def import_(model, out_path, force):
    """Import MODEL.onnx (ONNX or QONNX; docs/onnx.md) as a net.yaml and its .npz.

    The result is checked by xnorgen's front end before anything is written."""
    import io

    import yaml

    from xnorgen.frontend.description import parse_description
    from xnorgen.frontend.graph import build_graph
    from xnorgen.frontend.weights import attach_weights
    from xnorgen.interop.onnx_import import import_onnx
    from xnorgen.toolchain.output import write_files

    out = Path(out_path)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise XnorgenError(str(out), "the output is a net.yaml: name it <something>.yaml")
    npz = out.with_suffix(".npz")
    doc, arrays = import_onnx(model)
    doc = {"name": doc["name"], "input": doc["input"], "weights": npz.name, "output": doc["output"],
           "layers": doc["layers"]}
    attach_weights(build_graph(parse_description(doc, out)), arrays)      # the checks, before writing
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    source = "".join(c if c.isprintable() else "?" for c in Path(model).name)[:100]    # one comment line
    text = f"# imported from {source} by xnorgen import\n" + yaml.safe_dump(doc, sort_keys=False)
    write_files({npz: buf.getvalue(), out: text.encode()}, force=force)
    click.echo(f"wrote {out} and {npz}: {len(doc['layers'])} layers")


@main.command()
@click.argument("net", type=click.Path(dir_okay=False))
@_WEIGHTS
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), required=True, help="the .onnx to write")
@click.option("--force", is_flag=True, help="replace the .onnx if it exists")
@_user_errors
def export(net, weights_path, out_path, force):
    """Export NET as a standard ONNX model of its contract semantics (onnxruntime runs it)."""
    from xnorgen.api import load
    from xnorgen.interop.onnx_export import export_onnx
    from xnorgen.toolchain.output import write_files

    model = export_onnx(load(net, weights_file=weights_path))
    write_files({Path(out_path): model.SerializeToString()}, force=force)
    click.echo(f"wrote {out_path}: {len(model.graph.node)} ONNX nodes, opset {model.opset_import[0].version}")


@main.command()
@click.argument("net", type=click.Path(dir_okay=False))
@click.option("--target", "-t", default="host", show_default=True, help="target name (see `xnorgen targets`)")
@_WEIGHTS
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="output directory (default: ./<name>_<target>)")
@click.option("--flash-kib", type=click.FloatRange(min=0, min_open=True), default=None,
              help="the part's flash in KiB (default: the target's `memory`, e.g. 1024 for cortex-m4)")
@click.option("--ram-kib", type=click.FloatRange(min=0, min_open=True), default=None,
              help="the part's RAM in KiB (default: the target's `memory`, e.g. 192 for cortex-m4)")
@click.option("--no-fuse", is_flag=True, help="keep every batchnorm and float tensor (same numbers; for debugging)")
@_user_errors
def compile(net, target, weights_path, out_dir, flash_kib, ram_kib, no_fuse):
    """Compile NET (net.yaml) into C sources, a Makefile and manifest.json.

    For a firmware target (one that declares `memory`), or with --flash-kib/--ram-kib, the
    library is built once to report flash (text + rodata, by the target's size tool) and RAM
    (arena + input/output buffers), and nothing is written if it does not fit."""
    from xnorgen.api import load
    from xnorgen.api import compile_network
    from xnorgen.toolchain.output import write_directory
    from xnorgen.target import resolve

    t = resolve(target)
    if shutil.which(t.cc) is None:
        raise XnorgenError(f"target {t.name}", f"compiler {t.cc!r} not found on PATH (install it, or `make CC=...`)")
    network = load(net, weights_file=weights_path)
    plan, files = compile_network(network, t, fuse=not no_fuse)
    flash_kib = flash_kib if flash_kib is not None else t.memory.get("flash_kib")
    ram_kib = ram_kib if ram_kib is not None else t.memory.get("ram_kib")
    size = None
    if flash_kib is not None or ram_kib is not None:
        from xnorgen.toolchain.cross import check_fit, size_report
        size = size_report(plan, files)
        check_fit(size, flash_kib, ram_kib, net)
    out = write_directory(files, out_dir or f"{network.name}_{t.name}")
    m = json.loads(files["manifest.json"])
    weights = sum((lay["weight_bytes"] or {}).get("packed", 0) for lay in m["layers"])
    click.echo(f"{network.name}: {len(plan.layers)} layers for {t.name}; weights {weights} B, "
               f"arena {plan.arena_size} B (without reuse {m['arena_without_reuse']} B)")
    if size is not None:
        part = ", ".join(f"{v:g} KiB {k}" for k, v in (("flash", flash_kib), ("RAM", ram_kib)) if v is not None)
        click.echo(f"size: {size.describe()}; fits the part ({part})")
    click.echo(f"wrote {out}/  (build with: make -C {out_dir or out})")


@main.command()
@click.argument("net", type=click.Path(dir_okay=False))
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False),
              help=".npy with one sample or a batch (first axis = samples)")
@_WEIGHTS
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="write outputs to this .npy (default: print them)")
@click.option("--target", "-t", default="host", show_default=True,
              help="run the target's own code: natively, under qemu-aarch64 (armv8) or as firmware on an "
                   "emulated Cortex-M4 (cortex-m4)")
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
              help="cores a batch is spread over on this machine (0: all); the same outputs as 1")
@_user_errors
def run(net, input_path, weights_path, out_path, target, threads):
    """Compile NET and run it on an input .npy: for this machine (loaded with cffi), or with
    --target the target's own code (armv8 under qemu-aarch64, cortex-m4 as firmware on an
    emulated Cortex-M4 under qemu-system-arm).

    The input (one sample or a batch of finite real numbers) and -o's directory are checked
    before anything is built; a failed write leaves no file behind."""
    from xnorgen.api import load, run_on_target
    from xnorgen.reference import split_batch

    x = read_npy(input_path)
    out = None if out_path is None else Path(out_path)
    if out is not None and not out.parent.is_dir():
        raise XnorgenError(out_path, f"cannot write the outputs: {out.parent} is not an existing directory")
    network = load(net, weights_file=weights_path)
    split_batch(network, x, where=input_path)
    y = run_on_target(network, x, target, threads=threads or None)
    if out is None:
        np.set_printoptions(threshold=50, linewidth=100)
        click.echo(y)
        return
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".npy", dir=out.parent.resolve())
        with os.fdopen(fd, "wb") as f:
            np.save(f, y)
        os.replace(tmp, out)
    except OSError as e:
        raise XnorgenError(out_path, f"cannot write the outputs: {e.strerror or e}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


@main.command()
@click.argument("net", type=click.Path(dir_okay=False), required=False)
@click.option("--target", "-t", default="host", show_default=True, help="target whose cost table to use")
@click.option("--report", "-r", type=click.Choice(["speedup", "cycles", "memory"]), default="speedup",
              show_default=True, help="paper speedup model, target cycle model, or weight/arena memory")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--sweep", type=click.Choice(["channels", "kernel"]), default=None,
              help="speedup vs channels (Figure 4(b)) or vs filter size (Figure 4(c)); NET not needed")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="with --sweep: also write Figure 4(b)/(c) as a PNG (needs matplotlib)")
@click.option("--input", "-i", "input_path", type=click.Path(dir_okay=False), default=None,
              help="cycles report: run the simulator functionally on this .npy sample (needs weights)")
@_WEIGHTS
@_user_errors
def simulate(net, target, report, fmt, sweep, plot_path, input_path, weights_path):
    """Simulate NET without running it: --report speedup|cycles|memory (weights file not needed)."""
    from xnorgen.sim.report import format_table, plot_sweeps, simulate as _simulate

    if net is None and sweep is None:
        raise XnorgenError("simulate", "give a NET (net.yaml) or --sweep channels|kernel")
    x = None
    if input_path is not None:
        x = read_npy(input_path)
    if net is not None:
        from xnorgen.api import load
        from xnorgen.reference import split_batch
        net = load(net, weights=x is not None or weights_path is not None, weights_file=weights_path)
        if x is not None:           # one sample of finite real numbers, named by its file
            x = split_batch(net, x, where=input_path, batch=False)[0][0]
    rep = _simulate(net, target=target, report=report, x=x, sweep=sweep)
    if plot_path is not None:
        if sweep is None:
            raise XnorgenError("--plot", "needs --sweep channels|kernel")
        plot_sweeps(plot_path)
    click.echo(json.dumps(rep, indent=1) if fmt == "json" else format_table(rep))


@main.command()
@click.argument("net", type=click.Path(dir_okay=False))
@click.option("--target", "-t", default="host", show_default=True,
              help="cortex-m4 (emulated, qemu -icount), armv8 (qemu-aarch64 block log) or an x86 host (callgrind)")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_WEIGHTS
@_user_errors
def measure(net, target, fmt, weights_path):
    """Count NET's instructions per kernel on the target and set them beside the simulator's."""
    from xnorgen.api import load
    from xnorgen.sim.measured import compare, format_measured
    from xnorgen.target import resolve

    rep = compare(load(net, weights_file=weights_path), resolve(target))
    click.echo(json.dumps(rep, indent=1) if fmt == "json" else format_measured(rep))


@main.command()
@_user_errors
def targets():
    """List the targets and what each assumes."""
    from xnorgen.target import all_targets, resolve, runs_here

    host = resolve("host").name if any(runs_here(t) for t in all_targets().values()) else None
    for t in all_targets().values():
        flag = " (host)" if t.name == host else (" (runs here)" if runs_here(t) else "")
        click.echo(f"{t.name}{flag}: {t.description}")
        click.echo(f"    cc {t.cc} {' '.join(t.cflags)}; {t.word_bits}-bit words, {t.vector_bits}-bit vectors, "
                   f"popcount {t.popcount}; " + (f"needs {', '.join(t.requires_cpu) or 'nothing'} on {'/'.join(t.arch)}"
                                              if t.arch else "never runs natively"))
        if t.run:
            click.echo(f"    runs here through: {' '.join(t.run)}")
        if t.memory:
            click.echo(f"    part: {t.memory.get('flash_kib')} KiB flash, {t.memory.get('ram_kib')} KiB RAM "
                       "(fit check in `compile`; --flash-kib/--ram-kib)")


@main.command()
@click.argument("net", type=click.Path(dir_okay=False))
@click.option("--data", "-d", default="digits", show_default=True,
              help="`digits` (scikit-learn's 8x8 digits; pip install 'xnorgen[train]') or an .npz with X and y")
@click.option("--epochs", "-e", default=30, show_default=True, type=click.IntRange(1), help="passes over the data")
@click.option("--seed", "-s", default=0, show_default=True, type=int, help="initialization and batch order")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=None, type=click.FloatRange(min=0, min_open=True),
              help="initial learning rate (default: 0.05 for sgd, 0.003 for adam), cosine-decayed to 0")
@click.option("--optimizer", type=click.Choice(["auto", "sgd", "adam"]), default="auto", show_default=True,
              help="auto: adam if the net has xnor layers (XNOR-Net), else SGD with momentum (BWN, float)")
@click.option("--learn-alpha", is_flag=True, help="learn alpha per filter instead of eq. 6 (folded into W on export)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="weights .npz to write (xnorgen writes only where -o says, never to NET's `weights:`)")
@_user_errors
def train(net, data, epochs, seed, batch_size, lr, optimizer, learn_alpha, quiet, out_path):
    """Train NET's weights (XNOR-Net Algorithm 1) and write them to the .npz -o names.

    Use them with --weights W.npz on compile/run/simulate, or point NET's `weights:` at them."""
    from xnorgen.api import load
    from xnorgen.api import train as train_net

    network = load(net, weights=False)
    out = out_path
    r = train_net(network, data, out=out, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
                  optimizer=optimizer, learn_alpha=learn_alpha, progress=not quiet)
    d = r.dataset
    click.echo(f"{network.name}: test accuracy {100 * r.test_accuracy:.2f}% ({len(d.y_test)} samples), "
               f"train {100 * r.train_accuracy:.2f}%; {r.optimizer}, {epochs} epochs, seed {seed}, "
               f"{r.seconds:.1f}s")
    click.echo(f"inputs are normalized as (x - {d.mean:.6g}) / {d.std:.6g}")
    click.echo(f"wrote {out}")


@main.command()
@click.argument("net", type=click.Path(dir_okay=False))
@click.option("--target", "-t", default="host", show_default=True, help="a target that runs on this machine")
@click.option("--reps", default=30, show_default=True, type=click.IntRange(3), help="interleaved rounds per knob")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="tuned_targets", show_default=True,
              help="directory to write <target>-<net>.yaml into")
@_user_errors
def tune(net, target, reps, out_dir):
    """Time the target's kernel knobs on this machine for NET and write the best as a target.

    Each knob (filter_block, float_block, bwn_expand, pixel_lanes, store_tile, block_prefetch,
    stream_prefetch) is tried in turn against the best so far, in interleaved rounds; every
    candidate must give the same output bits. Build with it: XNORGEN_TARGETS=OUT xnorgen compile NET -t <target>-<net>."""
    from xnorgen.api import load
    from xnorgen.target import resolve
    from xnorgen.tune import tune as tune_net
    from xnorgen.tune import write_tuned_target

    network = load(net)
    t = resolve(target)
    r = tune_net(network, t, reps=reps, progress=lambda m: click.echo(m, err=True))
    click.echo(f"{'knob':16} {'value':>8}  time vs best so far")
    for knob, value, ratio, same in r.trials:
        click.echo(f"{knob:16} {value:>8}  {'no layer changes' if same else f'{ratio:.3f}'}")
    path = write_tuned_target(r, network.name, out_dir)
    click.echo(f"{t.name} for {network.name}: " + ", ".join(f"{k}={v}" for k, v in r.knobs.items()))
    click.echo(f"wrote {path}; build with XNORGEN_TARGETS={out_dir} and -t {path.stem}")


if __name__ == "__main__":
    main()
