"""C templates (Jinja, StrictUndefined); rendered by xnorgen.codegen."""
