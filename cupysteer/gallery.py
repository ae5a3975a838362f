"""Pictures of steerable filter bases and filter banks.

:func:`plot_basis` draws the irreps-level basis of a :class:`~cupysteer.LayerBasis`: one row
per irreps pair, one column per basis element (a d_out × d_in mosaic of k×k images), titled
with the element's angular frequency μ and ring radius r. :func:`plot_filters` draws an
expanded filter bank (C_out, C_in, k, k). Both use the diverging colour map ``RdBu_r``,
symmetric around 0 (red positive, blue negative, white zero).

Filters of groups acting on R³ (k×k×k, axes (−z, −y, x)) are drawn as their three central
slices side by side: the plane z = 0 (``K[..., h, :, :]``: rows −y, columns x), y = 0
(``K[..., :, h, :]``: rows −z, columns x) and x = 0 (``K[..., :, :, h]``: rows −z, columns −y),
h = k // 2 (for even k the planes just past the centre); the titles give the harmonic degree l.

matplotlib is imported only when a picture is drawn (``pip install matplotlib``, or
``pip install -e ".[plot]"`` in a checkout of cupysteer).
Without it, :func:`basis_image` + :func:`write_png` render the same grid with NumPy alone,
without titles.
"""
from __future__ import annotations

import math
import struct
import textwrap
import zlib
from pathlib import Path

import numpy as np

from .fields_spec import format_field_type, format_group
from .io import atomic_write

__all__ = ["require_matplotlib", "plot_basis", "plot_filters", "basis_cells", "basis_image",
           "filters_image", "central_slices", "write_png", "colorize", "PLOT_EXTRA_HINT",
           "MAX_PIXELS", "fit_scale", "fit_inches_per_pixel", "save_figure"]

PLOT_EXTRA_HINT = 'pip install matplotlib (in a checkout of cupysteer: pip install -e ".[plot]")'
CMAP = "RdBu_r"
# ColorBrewer RdBu (the 11 anchors matplotlib interpolates for RdBu), reversed: blue → red
_RDBU_R = np.array([[0x05, 0x30, 0x61], [0x21, 0x66, 0xac], [0x43, 0x93, 0xc3],
                    [0x92, 0xc5, 0xde], [0xd1, 0xe5, 0xf0], [0xf7, 0xf7, 0xf7],
                    [0xfd, 0xdb, 0xc7], [0xf4, 0xa5, 0x82], [0xd6, 0x60, 0x4d],
                    [0xb2, 0x18, 0x2b], [0x67, 0x00, 0x1f]], np.float64)
_GAP = 0.82  # grey of the gaps between sub-images (0..1)
#: rows are sorted in the group's irrep order when it has at most this many irreps
MAX_LISTED_IRREPS = 4096
#: the largest picture drawn, in pixels (about 120 MB of RGB, several times that while
#: matplotlib renders it): larger ones are drawn smaller, or refused naming their size
MAX_PIXELS = 40_000_000


def require_matplotlib():
    """``matplotlib.pyplot`` with the non-interactive Agg backend, or an ImportError that
    says how to install it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(f"cupysteer.gallery needs matplotlib to draw pictures: "
                          f"{PLOT_EXTRA_HINT}") from exc
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover - a backend already in use
            pass
    import matplotlib.pyplot as plt
    return plt


# ---- data -----------------------------------------------------------------------------
def _grid_shape(basis) -> tuple:
    fs = tuple(basis.filter_shape)
    if len(fs) not in (2, 3):
        raise ValueError(f"only bases sampled on a k×k grid (or a k×k×k grid) can be drawn; "
                         f"this one has {fs[0]} arbitrary points")
    return fs


def central_slices(vol: np.ndarray, gap: float = np.nan) -> np.ndarray:
    """(..., kz, ky, kx) → (..., max(kz, ky), 2·kx + ky + 2): the planes z = 0, y = 0, x = 0
    (see the module docstring) side by side, separated by one-pixel gaps of value ``gap``
    (NaN: drawn grey, +inf: white). Non-cubic filters (an anisotropic grid) are padded with
    ``gap`` at the bottom of the shorter planes."""
    vol = np.asarray(vol, np.float64)
    kz, ky, kx = vol.shape[-3:]
    hz, hy, hx = kz // 2, ky // 2, kx // 2
    out = np.full(vol.shape[:-3] + (max(kz, ky), 2 * kx + ky + 2), gap)
    out[..., :ky, :kx] = vol[..., hz, :, :]
    out[..., :kz, kx + 1:2 * kx + 1] = vol[..., :, hy, :]
    out[..., :kz, 2 * kx + 2:] = vol[..., :, :, hx]
    return out


def _mosaic(block: np.ndarray) -> np.ndarray:
    """(d_out, d_in, k, k) → one image with NaN gaps of one pixel between sub-images."""
    do, di, kh, kw = block.shape
    img = np.full((do * kh + do - 1, di * kw + di - 1), np.nan)
    for a in range(do):
        for c in range(di):
            img[a * (kh + 1):a * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = block[a, c]
    return img


def basis_cells(basis, max_columns: int | None = 12) -> list[dict]:
    """One dict per irreps pair (in the group's irrep order): ``label``, ``images`` (mosaics,
    NaN gaps), ``titles``, ``frequency``, ``radius``, ``count`` (elements in the pair,
    including those not shown)."""
    fs = _grid_shape(basis)
    rings = np.asarray(basis.settings.rings)
    sym = "l" if len(fs) == 3 else "μ"
    group = basis.in_type.group
    # the group's irrep order when listing them is cheap; else the layer's first-use order
    order = ({psi: i for i, psi in enumerate(group.irreps())}
             if getattr(group, "num_irreps", 0) <= MAX_LISTED_IRREPS else {})
    pairs = sorted(basis.irreps_pairs, key=lambda p: (order.get(p[0], 0), order.get(p[1], 0)))
    rows = []
    for pin, pout in pairs:
        pb = basis.pair_basis(pin, pout)
        n = len(pb) if max_columns is None else min(len(pb), max_columns)
        vals = np.asarray(pb.values[:n]).reshape((n,) + pb.shape + fs)
        if len(fs) == 3:  # white between the slices, grey between the irreps' components
            vals = central_slices(vals, np.inf)
        rows.append(dict(
            label=f"{pin.name} → {pout.name}",
            images=[_mosaic(vals[e]) for e in range(n)],
            titles=[f"{sym}={int(pb.frequency[e])} r={rings[pb.ring[e]]:g}" for e in range(n)],
            frequency=np.asarray(pb.frequency[:n]), radius=rings[np.asarray(pb.ring[:n])],
            count=len(pb)))
    return rows


# ---- matplotlib pictures ----------------------------------------------------------------
def _mpl_cmap(plt):
    cmap = plt.get_cmap(CMAP)
    return lambda t: cmap(t)[..., :3]


def _vmax(img) -> float:
    img = np.asarray(img, np.float64)
    m = float(np.abs(img[np.isfinite(img)]).max()) if np.isfinite(img).any() else 0.0
    return m if m > 0 else 1.0


def _draw(plt, cells, titles, row_labels, suptitle, notes=None, px=0.085, gap=(3.2, 1.0),
          left=1.25, dpi=100):
    """One Axes showing a canvas of equally sized RGB cells (rows of lists), with a title
    above each cell, a label left of each row and a note right of some rows. Drawing one
    image instead of one Axes per cell keeps large galleries fast."""
    canvas, pos = _canvas(cells, gap)
    H, W = canvas.shape[:2]
    h, w = cells[0][0].shape[:2]
    right, bottom = 0.35, 0.08
    px = fit_inches_per_pixel(H, W, px, dpi)
    fw = left + W * px + right
    suptitle = textwrap.fill(suptitle, max(20, int(fw / 0.058)))
    top = 0.25 + 0.13 * suptitle.count("\n")
    fh = top + H * px + bottom
    fig = plt.figure(figsize=(fw, fh))
    ax = fig.add_axes((left / fw, bottom / fh, W * px / fw, H * px / fh))
    ax.imshow(canvas, interpolation="nearest", extent=(-0.5, W - 0.5, H - 0.5, -0.5))
    ax.set_axis_off()
    for i, row in enumerate(pos):
        for j, (y, x) in enumerate(row):
            if titles[i][j]:
                ax.text(x + w / 2 - 0.5, y - 0.8, titles[i][j], ha="center", va="bottom",
                        fontsize=5.5)
        if row_labels and row_labels[i]:
            ax.text(-1.5, row[0][0] + h / 2 - 0.5, row_labels[i], ha="right", va="center",
                    fontsize=6)
        if notes and notes[i]:
            y, x = row[-1]
            ax.text(x + w + 0.3, y + h / 2 - 0.5, notes[i], ha="left", va="center",
                    fontsize=6)
    fig.text(0.5, 1 - 0.06 / fh, suptitle, ha="center", va="top", fontsize=7)
    return fig


def plot_basis(basis, path=None, max_columns: int | None = 12, title: str | None = None,
               dpi: int = 100):
    """Draw the irreps-level basis (rows = irreps pairs, columns = elements).

    Every element is scaled to its own maximum |value| (colour map symmetric around 0); a
    2-dim irrep's element is a d_out × d_in mosaic of k×k images separated by grey lines.
    Returns the matplotlib Figure; saves it to ``path`` when given.
    """
    plt = require_matplotlib()
    rows = basis_cells(basis, max_columns)
    shape = _common_shape([img for r in rows for img in r["images"]])
    cmap = _mpl_cmap(plt)
    cells = [[colorize(_pad(img, shape), cmap=cmap) for img in r["images"]] for r in rows]
    notes = [f"+{r['count'] - len(r['images'])}" if r["count"] > len(r["images"]) else ""
             for r in rows]
    fs = "×".join(map(str, basis.filter_shape))
    what = ("l: harmonic degree, r: shell radius; slices z=0 | y=0 | x=0"
            if len(basis.filter_shape) == 3 else "μ: angular frequency, r: ring radius")
    title = title or (f"{format_group(basis.in_type.group)}: {format_field_type(basis.in_type)}"
                      f" → {format_field_type(basis.out_type)}, {fs}: {basis.dim} weights; "
                      f"irreps-level basis ({what}; red > 0 > blue)")
    fig = _draw(plt, cells, [r["titles"] for r in rows], [r["label"] for r in rows], title,
                notes, dpi=dpi)
    if path is not None:
        save_figure(fig, path, dpi)
    return fig


def _filter_images(filters: np.ndarray, columns: int | None):
    F = np.asarray(filters, np.float64)
    if F.ndim not in (4, 5):
        raise ValueError(f"filters must have shape (C_out, C_in, k, k) or (C_out, C_in, k, k, "
                         f"k), got {F.shape}")
    if F.ndim == 5:
        F = central_slices(F)
    co, ci = F.shape[:2]
    if ci == 1:
        cols = columns or min(co, 8)
        imgs = [F[o, 0] for o in range(co)]
        labels = [f"out {o}" for o in range(co)]
    else:
        cols = ci
        imgs = [F[o, i] for o in range(co) for i in range(ci)]
        labels = [f"{o},{i}" for o in range(co) for i in range(ci)]
    nrows = -(-len(imgs) // cols)
    return imgs, labels, nrows, cols


def plot_filters(filters, path=None, columns: int | None = None, title: str | None = None,
                 dpi: int = 100, max_rows: int | None = 16):
    """Draw an expanded filter bank (C_out, C_in, k, k): rows = output channels and
    columns = input channels (or, for one input channel, ``columns`` outputs per row), all
    on one colour scale symmetric around 0; (C_out, C_in, k, k, k) as central slices. At most
    ``max_rows`` rows. Returns the Figure; saves it to ``path``."""
    plt = require_matplotlib()
    imgs, labels, nrows, cols = _filter_images(filters, columns)
    if max_rows is not None and nrows > max_rows:
        imgs, labels, nrows = imgs[:max_rows * cols], labels[:max_rows * cols], max_rows
    vmax = max(_vmax(i) for i in imgs)
    cmap = _mpl_cmap(plt)
    cells = [[colorize(i, vmax, cmap=cmap) for i in imgs[r * cols:(r + 1) * cols]]
             for r in range(nrows)]
    titles = [labels[r * cols:(r + 1) * cols] for r in range(nrows)]
    fig = _draw(plt, cells, titles, None, title or "filters (red > 0 > blue)", left=0.15,
                px=max(0.085, 0.6 / cells[0][0].shape[1]), gap=(2.0, 1.0), dpi=dpi)
    if path is not None:
        save_figure(fig, path, dpi)
    return fig


# ---- NumPy-only rendering ----------------------------------------------------------------
def _common_shape(images) -> tuple[int, int]:
    return (max(i.shape[0] for i in images), max(i.shape[1] for i in images))


def _pad(img: np.ndarray, shape) -> np.ndarray:
    """Centre ``img`` in ``shape``; the margin is +inf (drawn white)."""
    out = np.full(shape, np.inf)
    y, x = (shape[0] - img.shape[0]) // 2, (shape[1] - img.shape[1]) // 2
    out[y:y + img.shape[0], x:x + img.shape[1]] = img
    return out


def _rdbu_r(t: np.ndarray) -> np.ndarray:
    t = t * (len(_RDBU_R) - 1)
    lo = np.minimum(np.floor(t).astype(int), len(_RDBU_R) - 2)
    frac = (t - lo)[..., None]
    return (_RDBU_R[lo] * (1 - frac) + _RDBU_R[lo + 1] * frac) / 255.0


def colorize(img: np.ndarray, vmax: float | None = None, cmap=None) -> np.ndarray:
    """Values → RGB uint8 with RdBu_r on [−vmax, vmax] (``vmax`` defaults to max |img|);
    NaN (gaps between sub-images) → grey, +inf (padding) → white. ``cmap`` maps [0, 1] to
    RGB in [0, 1] (default: the 11 ColorBrewer anchors of RdBu_r, linearly interpolated,
    as matplotlib does)."""
    img = np.asarray(img, np.float64)
    finite = np.isfinite(img)
    vmax = _vmax(np.where(finite, img, np.nan)) if vmax is None else float(vmax)
    t = np.clip((np.where(finite, img, 0.0) / vmax + 1.0) / 2.0, 0.0, 1.0)
    rgb = 255.0 * (_rdbu_r if cmap is None else cmap)(t)
    rgb[np.isnan(img)] = 255 * _GAP
    rgb[np.isinf(img)] = 255
    return np.round(rgb).astype(np.uint8)


def _canvas(cells: list[list[np.ndarray]], gap=(1.0, 1.0)):
    """Rows of equally sized RGB cells → a white canvas and each cell's (y, x); ``gap`` is
    (above each row, between columns) in cell pixels."""
    h, w = cells[0][0].shape[:2]
    gy, gx = int(round(gap[0])), int(round(gap[1]))
    ncols = max(len(row) for row in cells)
    H, W = len(cells) * (h + gy), ncols * (w + gx) - gx
    canvas = np.full((H, W, 3), 255, np.uint8)
    pos = []
    for i, row in enumerate(cells):
        pos.append([])
        for j, c in enumerate(row):
            y, x = i * (h + gy) + gy, j * (w + gx)
            canvas[y:y + c.shape[0], x:x + c.shape[1]] = c
            pos[-1].append((y, x))
    return canvas, pos


def _scaled(canvas: np.ndarray, scale: int) -> np.ndarray:
    """Each canvas pixel as scale × scale pixels; the scale is lowered (down to 1) to keep
    the picture within :data:`MAX_PIXELS`."""
    scale = fit_scale(canvas.shape[0], canvas.shape[1], scale)
    return np.repeat(np.repeat(canvas, scale, 0), scale, 1)


def _too_large(H: int, W: int) -> ValueError:
    return ValueError(f"the picture would have {H}×{W} cells ({H * W} pixels even at one "
                      f"pixel per value), more than the cap of {MAX_PIXELS} pixels; draw fewer "
                      f"columns (max_columns, --max-columns) or fewer channels")


def fit_scale(H: int, W: int, scale: int) -> int:
    """The largest scale ≤ ``scale`` at which an H×W canvas stays within
    :data:`MAX_PIXELS`; ValueError naming the size when even scale 1 does not."""
    if H * W > MAX_PIXELS:
        raise _too_large(H, W)
    return max(1, min(int(scale), int(math.isqrt(MAX_PIXELS // max(H * W, 1)))))


def fit_inches_per_pixel(H: int, W: int, px: float, dpi: int) -> float:
    """Inches per canvas pixel of a matplotlib figure, lowered so that the figure stays
    within :data:`MAX_PIXELS` at ``dpi``; ValueError naming the size when even one screen
    pixel per value is too many."""
    if H * W > MAX_PIXELS:
        raise _too_large(H, W)
    limit = math.sqrt(MAX_PIXELS / (H * W)) / dpi
    return max(min(px, limit), 1.0 / dpi)


def basis_image(basis, max_columns: int | None = 12, scale: int = 8) -> np.ndarray:
    """The :func:`plot_basis` grid as an RGB uint8 array, without matplotlib (no text)."""
    rows = basis_cells(basis, max_columns)
    shape = _common_shape([img for r in rows for img in r["images"]])
    canvas, _ = _canvas([[colorize(_pad(img, shape)) for img in r["images"]] for r in rows],
                        (2, 1))
    return _scaled(canvas, scale)


def filters_image(filters, columns: int | None = None, scale: int = 8,
                  max_rows: int | None = None) -> np.ndarray:
    """The :func:`plot_filters` grid as an RGB uint8 array, without matplotlib (all rows, or
    the first ``max_rows``)."""
    imgs, _, nrows, cols = _filter_images(filters, columns)
    if max_rows is not None and nrows > max_rows:
        imgs, nrows = imgs[:max_rows * cols], max_rows
    vmax = max(_vmax(np.asarray(i)) for i in imgs)
    cells = [[colorize(i, vmax) for i in imgs[r * cols:(r + 1) * cols]] for r in range(nrows)]
    return _scaled(_canvas(cells, (1, 1))[0], scale)


def write_png(path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as an 8-bit RGB PNG (zlib only)."""
    rgb = np.ascontiguousarray(rgb, np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must have shape (H, W, 3), got {rgb.shape}")
    h, w = rgb.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, 3 * w)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + chunk(b"IEND", b""))
    atomic_write(path, lambda f: f.write(png))


def save_figure(fig, path, dpi: int = 100) -> None:
    """Save a matplotlib figure to exactly ``path``, atomically: in the format its extension
    names (``.pdf``, ``.svg``, …) and as PNG for any other or no extension (matplotlib alone
    would write ``path + ".png"`` then)."""
    fmt = Path(path).suffix[1:].lower()
    if fmt not in fig.canvas.get_supported_filetypes():
        fmt = "png"
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))
