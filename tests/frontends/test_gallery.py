"""Pictures: colours, PNG writer, orientation of the drawn filters, matplotlib figures."""
from __future__ import annotations

import sys
import zlib

import numpy as np
import pytest

import cupysteer as cs
from cupysteer import gallery
from cupysteer.fields_spec import parse_field_type


def read_png(path) -> np.ndarray:
    """Decode the 8-bit RGB, filter-0 PNGs that gallery.write_png writes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", None, None
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert zlib.crc32(tag + body) == int.from_bytes(data[pos + 8 + n:pos + 12 + n], "big")
        if tag == b"IHDR":
            w, h = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, 3)


def c4_regular():
    G = cs.CyclicGroup(4)
    t = parse_field_type(G, "regular")
    return cs.LayerBasis(t, t, 5)


def test_colorize_is_a_symmetric_diverging_map():
    rgb = gallery.colorize(np.array([[-2.0, 0.0, 2.0, np.nan, np.inf]]))
    assert tuple(rgb[0, 0]) == (0x05, 0x30, 0x61)  # RdBu_r: most negative is dark blue
    assert tuple(rgb[0, 1]) == (0xf7, 0xf7, 0xf7)  # zero is (almost) white
    assert tuple(rgb[0, 2]) == (0x67, 0x00, 0x1f)  # most positive is dark red
    assert tuple(rgb[0, 3]) == (209, 209, 209)  # gaps between sub-images: grey
    assert tuple(rgb[0, 4]) == (255, 255, 255)  # padding: white
    # symmetric around 0: v and -v are mirror colours of the palette
    x = np.linspace(-1, 1, 11)[None]
    c = gallery.colorize(x, vmax=1.0)[0]
    assert np.array_equal(c, gallery._RDBU_R.astype(np.uint8))


def test_matches_matplotlib_colormap():
    mpl = pytest.importorskip("matplotlib")
    cmap = mpl.colormaps["RdBu_r"]
    t = np.linspace(0, 1, 101)
    ours = gallery._rdbu_r(t)
    np.testing.assert_allclose(ours, cmap(t)[:, :3], atol=2.5 / 255)


def test_write_png_roundtrip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    gallery.write_png(tmp_path / "x.png", rgb)
    assert np.array_equal(read_png(tmp_path / "x.png"), rgb)
    with pytest.raises(ValueError):
        gallery.write_png(tmp_path / "y.png", rgb[..., 0])


def test_filter_picture_keeps_orientation(tmp_path):
    """C4 regular → regular: K[i+1, j+1] is K[i, j] rotated by 90° counter-clockwise. The
    picture (row 0 at the top, y up) must show exactly that: cell (i+1, j+1) = rot90 of
    cell (i, j) in pixels."""
    basis = c4_regular()
    K = basis.expand(basis.init_weights(np.random.default_rng(1), np.float64))
    for i in range(4):
        for j in range(4):
            np.testing.assert_allclose(np.rot90(K[i, j]), K[(i + 1) % 4, (j + 1) % 4],
                                       atol=1e-12)
    img = gallery.filters_image(K, scale=1)
    gallery.write_png(tmp_path / "f.png", img)
    img = read_png(tmp_path / "f.png")
    assert img.shape == (4 * 6, 4 * 6 - 1, 3)  # 5×5 cells, 1 px gaps

    def cell(i, j):
        y, x = i * 6 + 1, j * 6
        return img[y:y + 5, x:x + 5]

    for i in range(4):
        for j in range(4):
            assert np.array_equal(np.rot90(cell(i, j)), cell((i + 1) % 4, (j + 1) % 4))
    assert not np.array_equal(cell(0, 0), cell(1, 1))


def test_basis_cells_rows_and_mosaics():
    G = cs.CyclicGroup(4)
    basis = cs.LayerBasis(parse_field_type(G, "trivial"), parse_field_type(G, "regular"), 5)
    rows = gallery.basis_cells(basis)
    assert [r["label"] for r in rows] == ["irrep_0 → irrep_0", "irrep_0 → irrep_1",
                                          "irrep_0 → irrep_2"]
    assert sum(r["count"] for r in rows) == basis.dim
    r1 = rows[1]
    # the 2×1 elements of (irrep_0 → irrep_1) at frequency 1: (cos μθ, sin μθ) — the second
    # image is the first one rotated by 90° counter-clockwise, with a NaN gap row between
    img = r1["images"][0]
    assert img.shape == (11, 5) and np.isnan(img[5]).all()
    np.testing.assert_allclose(np.rot90(img[:5]), img[6:], atol=1e-12)
    assert r1["titles"][0].startswith("μ=1 r=")
    assert gallery.basis_cells(basis, max_columns=1)[1]["count"] == r1["count"]
    assert len(gallery.basis_cells(basis, max_columns=1)[1]["images"]) == 1


def test_basis_image_without_matplotlib(tmp_path):
    rgb = gallery.basis_image(c4_regular(), scale=2)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    gallery.write_png(tmp_path / "b.png", rgb)
    assert np.array_equal(read_png(tmp_path / "b.png"), rgb)


def test_points_bases_cannot_be_drawn():
    G = cs.CyclicGroup(4)
    t = parse_field_type(G, "trivial")
    b = cs.LayerBasis(t, t, 3, points=np.random.default_rng(0).normal(size=(6, 2)))
    with pytest.raises(ValueError, match="k×k grid"):
        gallery.basis_cells(b)


def test_import_error_says_how_to_install_matplotlib(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install matplotlib'):
        gallery.plot_basis(c4_regular())


def test_matplotlib_figures(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    basis = c4_regular()
    fig = gallery.plot_basis(basis, tmp_path / "b.png", max_columns=4)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "irrep_1 → irrep_1" in texts and any(t.startswith("μ=") for t in texts)
    assert any(t.startswith("+") for t in texts)  # elements left out of a row are counted
    assert fig.axes[0].images[0].get_array().shape[2] == 3
    plt.close(fig)
    K = basis.expand(basis.init_weights(np.random.default_rng(0), np.float64))
    fig = gallery.plot_filters(K, tmp_path / "f.png", title="C4")
    plt.close(fig)
    for f in ("b.png", "f.png"):
        assert (tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="C_out, C_in"):
        gallery.plot_filters(K[0])
