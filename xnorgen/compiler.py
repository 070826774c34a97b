"""The compile driver: Network -> Plan -> files, and writing them atomically."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from xnorgen.sim.costmodel import predict

from . import codegen
from .errors import XnorgenError
from .graph import Network
from .plan import Plan, plan_network
from .target import Target, resolve


def compile_network(net: Network, target: str | Target = "host", fuse: bool = True) -> tuple[Plan, dict[str, str]]:
    """Plan and render a network with weights; returns the plan and {file name: text}.
    fuse=False disables the batchnorm/binarize fusions (same numbers, more memory traffic)."""
    t = resolve(target) if isinstance(target, str) else target
    plan = plan_network(net, t, predict=predict, fuse=fuse)
    return plan, codegen.render(plan)


def write_directory(files: dict[str, str], out_dir) -> Path:
    """Write files into out_dir all-or-nothing: a sibling temp dir is filled, then renamed.

    An existing out_dir is replaced only if it is empty or an earlier xnorgen output
    (has manifest.json), so `-o .` can never wipe a user's directory.
    """
    out = Path(out_dir).resolve()
    if out.exists():
        if not out.is_dir():
            raise XnorgenError(str(out_dir), "exists and is not a directory")
        if any(out.iterdir()) and not (out / "manifest.json").exists():
            raise XnorgenError(str(out_dir), "exists, is not empty and is not an xnorgen output; choose another -o")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
