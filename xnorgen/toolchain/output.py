"""Writing a compiled network's files into the user's -o directory, all or nothing."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from xnorgen.errors import XnorgenError


#: The file compile writes beside the library, listing every file it wrote: the proof that a
#: directory is an earlier xnorgen output and may be replaced.
MARKER = ".xnorgen-output.json"


def build_products(name: str) -> set[str]:
    """Files the generated Makefile writes (templates/Makefile.j2): replaced along with the sources."""
    return {f"{name}.o", f"{name}_weights.o", f"lib{name}.a"}


def _replaceable(out: Path) -> str | None:
    """None if out may be replaced (empty, or exactly an earlier output: its marker's files, all
    present as regular files, plus its Makefile's products), else why not."""
    entries = {p.name: p for p in out.iterdir()}
    if not entries:
        return None
    if MARKER not in entries:
        older = " (an older xnorgen wrote no marker; delete such an output yourself)" \
            if "manifest.json" in entries else ""
        return f"is not empty and is not an xnorgen output{older}"
    try:
        marker = json.loads(entries[MARKER].read_text())
        listed, name = set(marker["files"]), marker["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"has an unreadable {MARKER}"
    missing = sorted(listed - set(entries))
    extra = sorted(set(entries) - listed - {MARKER} - build_products(str(name)))
    odd = sorted(n for n, p in entries.items() if p.is_symlink() or not p.is_file())
    if extra or odd:
        return f"holds files xnorgen did not write there ({(extra + odd)[0]}...)"
    if missing:
        return f"lacks {missing[0]}, which xnorgen wrote there"
    return None


def write_directory(files: dict[str, str], out_dir) -> Path:
    """Write files into out_dir all-or-nothing: a sibling temp dir is filled, then renamed.

    An existing out_dir is replaced only if it is empty or provably an earlier output of
    this function (see _replaceable), and then only the files it lists are deleted, so
    `-o .` can never wipe a user's directory. OS errors are XnorgenErrors naming out_dir.
    """
    name = json.loads(files["manifest.json"])["name"]
    try:
        return _write_directory(files, Path(out_dir).resolve(), name, str(out_dir))
    except OSError as e:
        raise XnorgenError(str(out_dir), f"cannot write the output directory: {e.strerror or e}") from None


def _write_directory(files: dict[str, str], out: Path, name: str, where: str) -> Path:
    if out.exists():
        if not out.is_dir():
            raise XnorgenError(where, "exists and is not a directory")
        why = _replaceable(out)
        if why:
            raise XnorgenError(where, f"{why}; choose another -o (xnorgen never deletes files it did not write)")
    if out.parent.exists() and not out.parent.is_dir():
        raise XnorgenError(where, f"{out.parent} is not a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for fname, text in files.items():
            (tmp / fname).write_text(text)
        (tmp / MARKER).write_text(json.dumps({"name": name, "files": sorted(files)}, indent=1) + "\n")
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            _remove_output(old)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)       # only ever our own temp dir
    return out


def _remove_output(old: Path) -> None:
    """Delete a replaced output: the files its marker lists and its Makefile's products, then the
    directory; anything else that appeared meanwhile is left where it is."""
    try:
        marker = json.loads((old / MARKER).read_text())
        listed = set(marker["files"]) | build_products(str(marker["name"]))
    except (OSError, ValueError, KeyError, TypeError):
        listed = set()
    for fname in (listed | {MARKER}) & {p.name for p in old.iterdir()}:
        (old / fname).unlink()
    try:
        old.rmdir()
    except OSError:
        warnings.warn(f"{old}: the replaced output directory held new files; left in place")


def write_files(contents: dict, force: bool = False) -> None:
    """Write {path: bytes} all or nothing: each into a temp file beside it, then renamed over.
    An existing path is refused unless force (xnorgen never overwrites a file it was not told
    it may); on any failure the temp files are removed and nothing is left half-written."""
    paths = {Path(p): data for p, data in contents.items()}
    for p in paths:
        if (p.exists() or p.is_symlink()) and not force:
            raise XnorgenError(str(p), "exists; refusing to overwrite it (--force replaces it)")
        if p.exists() and not p.is_file():
            raise XnorgenError(str(p), "exists and is not a regular file")
    temps = {}
    try:
        for p in paths:                                  # the user named this path: make its folder
            p.parent.mkdir(parents=True, exist_ok=True)
        for p, data in paths.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent if str(p.parent) else ".")
            temps[p] = tmp
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        for p, tmp in temps.items():
            os.replace(tmp, p)
    except OSError as e:
        for tmp in temps.values():
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise XnorgenError(str(getattr(e, "filename", None) or next(iter(paths))),
                           f"cannot write: {e.strerror or e}") from None
