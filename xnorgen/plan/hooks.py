"""Which hook the C calls: the target's ISA header's own, or xg_common.h's portable one.

A hook (xg_xor_popcount_block, xg_sign_tile, xg_tile_store ...) is provided by the target's
ISA header (templates/isa/xg_<popcount>.h) when the target data lists it (Target.hooks) and
the network's configuration meets its requirements; otherwise by xg_common.h. The header's
own #if guards make the same decision in C; tests/test_isa_headers.py holds the two equal for
every target and configuration, so the plan, the manifest and the simulator can rely on this.
"""
from __future__ import annotations

from xnorgen.plan.tiling import BINARIZE_TILE, LANE_FILTERS, SUM_LANES, filter_block, float_filter_block
from xnorgen.target import Target

PORTABLE = "portable"


def isa_config(target: Target) -> dict[str, int]:
    """The configuration macros a network's .c defines before the hook headers (XG_WORD_BITS,
    XG_FB, XG_FFB, XG_PX, XG_PF, XG_TP, XG_BT, XG_SL), as the names hook requirements use."""
    fb = filter_block(target)
    return {"word_bits": target.word_bits, "filter_block": fb, "float_block": float_filter_block(target),
            "pixel_lanes": target.pixel_lanes, "lane_filters": LANE_FILTERS, "store_tile": target.store_tile,
            "binarize_tile": BINARIZE_TILE, "sum_lanes": SUM_LANES}


def _meets(config: dict, req: dict) -> bool:
    for key, want in req.items():
        if key == "filter_block_multiple_of":
            if config["filter_block"] % want:
                return False
        elif config[key] != want:
            return False
    return True


def isa_hooks(target: Target) -> list[str]:
    """The hooks the target's ISA header defines for its configuration, sorted."""
    config = isa_config(target)
    return sorted(name for name, req in target.hooks.items() if _meets(config, req or {}))


def hook_source(target: Target, hook: str) -> str:
    """Who provides `hook` on this target: its ISA header's name (target.popcount) or PORTABLE."""
    return target.popcount if hook in isa_hooks(target) else PORTABLE
