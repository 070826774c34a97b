"""Stage 3, plan: every decision the code generator and the simulator follow, in one IR.

core holds the IR (Plan, LayerPlan, Buffer) and runs the passes (plan_network); fusion
decides which batchnorms and binarize stages fold into their neighbours; tiling holds the
pure functions that choose filter blocks, pixel lanes and column ranges. manifest.json is
this IR dumped. Needs a Network (xnorgen.frontend) and a Target; knows nothing of C text.
"""
