"""Stage 4, codegen: a Plan -> C sources, a Makefile and manifest.json.

lowering turns each layer's real-valued parameters into the constant arrays its kernel
reads (bit-packed signs, α, folded batchnorm); render fills the Jinja templates in
templates/ with checked identifiers and numbers. Python decides, templates hold the C.
"""
