"""Stage 5, build and run: generated sources -> a loaded library or a cross-built binary.

loader compiles a network's C with the target's compiler and loads it through cffi (with a
checked, hash-recorded cache); runtime wraps the loaded library as a Python callable;
cross builds and runs a C harness for targets this machine cannot load (qemu, firmware).
"""
