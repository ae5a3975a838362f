"""Run-time fix of e2cnn 0.2.3 for torch >= 2, shared by the benchmark driver and the fixture
script (both run with the separate e2cnn environment; site-packages is never touched)."""
import inspect

import e2cnn
from e2cnn.nn.modules.r2_conv import basisexpansion_singleblock as _sb


def patch_bool_mask():
    """Run-time fix for torch >= 2 (reference notes §9): SingleBlockBasisExpansion.__init__
    indexes with a uint8 mask, which torch 2 rejects when a single element survives ("masked_fill_
    only supports boolean masks"). Re-create the constructor with that mask (and the values
    written through it) as bool; sampled values are unchanged. site-packages is not touched."""
    cls = _sb.SingleBlockBasisExpansion
    if getattr(cls, "_bool_mask_patched", False):
        return
    src = inspect.getsource(cls.__init__)
    lines = src.splitlines()
    indent = len(lines[0]) - len(lines[0].lstrip())
    src = "\n".join(line[indent:] for line in lines)
    for old, new in (("mask = mask.astype(np.uint8)", "mask = mask.astype(bool)"),
                     ("full_mask[mask] = norms.to(torch.uint8)",
                      "full_mask[mask] = norms.to(torch.bool)")):
        if src.count(old) != 1:
            raise RuntimeError(f"e2cnn bool-mask patch: {old!r} not found once in "
                               f"SingleBlockBasisExpansion.__init__ (e2cnn version "
                               f"{getattr(e2cnn, '__version__', '?')}?)")
        src = src.replace(old, new)
    ns: dict = {}
    exec(compile(src, inspect.getsourcefile(cls), "exec"), vars(_sb), ns)
    # the constructor calls super(SingleBlockBasisExpansion, self): resolved in _sb's globals
    cls.__init__ = ns["__init__"]
    cls._bool_mask_patched = True
