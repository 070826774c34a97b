"""Stage 5, build: compile a rendered network with cffi (API mode) and load it.

Needs: the files codegen.render produced, for a target that runs on this machine.
Guarantees: the extension module's name carries a hash of every generated file
and of the compiler flags, so a changed network never loads a stale library;
builds are cached on disk by that hash ($XNORGEN_CACHE, default
~/.cache/xnorgen) and in memory per process. A cached module is loaded only if
its content hash matches the one recorded when it was built (a truncated,
damaged or replaced .so is rebuilt); a cache writable by others gets a warning;
every failure is an XnorgenError naming the cache or the build.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import cffi

from xnorgen.errors import XnorgenError
from xnorgen.naming import infer_symbol
from xnorgen.target import Target, runs_here

_LOADED: dict[str, object] = {}


def cache_dir() -> Path:
    """The build cache, created if needed; a path that cannot be one is an XnorgenError."""
    d = Path(os.environ.get("XNORGEN_CACHE") or Path.home() / ".cache" / "xnorgen")
    try:
        d.mkdir(parents=True, exist_ok=True)
        st = d.stat()
    except OSError as e:
        raise XnorgenError(f"build cache {d}", f"cannot use it: {e.strerror or e} (set XNORGEN_CACHE to a "
                                               "writable directory)") from None
    if st.st_mode & 0o022 and not st.st_mode & 0o1000:
        warnings.warn(f"build cache {d}: writable by other users, who could replace the modules xnorgen "
                      "loads from it (chmod go-w, or set XNORGEN_CACHE)", stacklevel=2)
    return d


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _recorded_module(dest: Path, modname: str) -> Path | None:
    """The cached module file if its content hash is the one recorded at build time, else None."""
    files = sorted(dest.glob(f"{modname}*.so")) + sorted(dest.glob(f"{modname}*.pyd"))
    record = dest / "sha256"
    try:
        if len(files) == 1 and record.read_text().strip() == _digest(files[0]):
            return files[0]
    except OSError:
        pass
    return None


def module_name(name: str, files: dict[str, str], target: Target) -> str:
    h = hashlib.sha256()
    for fname in sorted(files):
        h.update(fname.encode() + b"\0" + files[fname].encode() + b"\0")
    h.update(repr((target.cc, target.cflags, cffi.__version__, sys.version, MODULE_HELPERS,
                   _cdef(name, _hosted(files)))).encode())
    return f"_xnorgen_{name}_{h.hexdigest()[:16]}"


#: C the module adds around the library (not part of it): the input check of the Python call,
#: run on each sample just before the inference reads it, so the data is read from cache once more
#: instead of from memory by numpy (L2's batch of 16: 2.5 ms of 27). A float is finite iff its
#: exponent bits are not all ones; the loop over OR-ed flags vectorizes.
MODULE_HELPERS = """
static long xg_first_nonfinite(const float *x, long n)
{
    const uint32_t *b = (const uint32_t *)(const void *)x;
    uint32_t bad = 0;
    for (long i = 0; i < n; ++i)
        bad |= (uint32_t)((b[i] & 0x7f800000u) == 0x7f800000u);
    if (!bad)
        return -1;
    for (long i = 0; i < n; ++i)
        if ((b[i] & 0x7f800000u) == 0x7f800000u)
            return i;
    return -1;
}
"""


def _hosted(files: dict[str, str]) -> bool:
    """True if the rendered files are a hosted target's (xg_pool.c beside the library, and the
    batch and parallel entry points in it: codegen.render)."""
    return "xg_pool.c" in files


def _cdef(name: str, parallel: bool) -> str:
    """The module's C declarations: the contract's entry point and size macros, and on hosted
    targets the batch and parallel entry points, with xg_pool (templates/host/xg_pool.h)."""
    p, infer = name.upper(), infer_symbol(name)
    cdef = (f"#define {p}_INPUT_SIZE ...\n#define {p}_OUTPUT_SIZE ...\n#define {p}_ARENA_SIZE ...\n"
            f"int {infer}(const float *input, float *output, void *arena);\n"
            "long xg_first_nonfinite(const float *x, long n);\n")
    if parallel:
        cdef += (f"#define {p}_ARENA_STRIDE ...\n"
                 f"int {infer}_batch(const float *input, float *output, int n, void *arena);\n"
                 f"#define {p}_MAX_PARTS ...\n"
                 f"int {infer}_parallel(const float *input, float *output, void *arena, int parts,\n"
                 "    void (*parallel_for)(void *pool, int n, void (*task)(void *ctx, int i), void *ctx), void *pool);\n"
                 "typedef struct xg_pool xg_pool;\nxg_pool *xg_pool_create(int threads);\n"
                 "void xg_pool_destroy(xg_pool *pool);\n"
                 "void xg_pool_parallel_for(void *pool, int n, void (*task)(void *ctx, int i), void *ctx);\n")
    return cdef


def _compile(modname: str, name: str, files: dict[str, str], target: Target, dest: Path) -> None:
    """Write sources and compile them into dest/ (built in a temp dir, renamed when complete)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=modname + ".", dir=dest.parent))
    try:
        for fname, text in files.items():
            (work / fname).write_text(text)
        ffi = cffi.FFI()
        parallel = _hosted(files)
        ffi.cdef(_cdef(name, parallel))
        sources = [f"{name}.c", f"{name}_weights.c"] + (["xg_pool.c"] if parallel else [])
        ffi.set_source(modname, f'#include <stdint.h>\n#include "{name}.h"\n' + ('#include "xg_pool.h"\n' if parallel else "")
                       + MODULE_HELPERS,
                       sources=[str(work / f) for f in sources], include_dirs=[str(work)],
                       extra_compile_args=list(target.cflags) + (["-pthread"] if parallel else []),
                       extra_link_args=["-pthread"] if parallel else [])
        old_cc = os.environ.get("CC")
        os.environ.setdefault("CC", target.cc)
        try:
            ffi.compile(tmpdir=str(work), verbose=False)
        except Exception as e:   # distutils/setuptools raise their own CompileError types
            raise XnorgenError(f"build {name}", f"C compilation failed: {str(e).splitlines()[-1] if str(e) else e}") from None
        finally:
            if old_cc is None:
                os.environ.pop("CC", None)
        built = sorted(work.glob(f"{modname}*.so")) + sorted(work.glob(f"{modname}*.pyd"))
        (work / "sha256").write_text(_digest(built[0]) + "\n")     # checked at every load
        try:
            work.rename(dest)
        except OSError:          # another process finished the same build first
            if not dest.exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load_module(name: str, files: dict[str, str], target: Target):
    """Compile (or reuse from cache) and import the cffi module of one rendered network."""
    if not runs_here(target):
        raise XnorgenError(f"target {target.name}", "does not run on this machine; use `xnorgen compile` instead")
    modname = module_name(name, files, target)
    if modname in _LOADED:
        return _LOADED[modname]
    dest = cache_dir() / modname
    so = _recorded_module(dest, modname)
    if so is None:                      # never built, or damaged or replaced since: build again
        try:
            shutil.rmtree(dest, ignore_errors=True)
            _compile(modname, name, files, target, dest)
        except OSError as e:
            raise XnorgenError(f"build cache {dest.parent}", f"cannot write: {e.strerror or e}") from None
        so = _recorded_module(dest, modname)
        if so is None:
            raise XnorgenError(f"build {name}", f"the module in {dest} changed while it was being loaded")
    spec = importlib.util.spec_from_file_location(modname, so)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except (ImportError, OSError) as e:
        raise XnorgenError(f"build {name}", f"cannot load {so.name}: {e}") from None
    _LOADED[modname] = mod
    return mod
