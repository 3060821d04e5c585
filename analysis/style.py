"""One look for every figure of the suite, sized for a paper.

Every method has a fixed display name, colour and marker (``method_style``), the same in every
figure whichever methods it shows. Colours are the Okabe-Ito palette (Okabe & Ito 2008, "Color
Universal Design"; readable with the common colour-vision deficiencies), and every method also has
its own marker, and the methods that share a colour a different line style, so that a grey print
still separates them. BrainCL is drawn in vermillion, with a thicker line, on top of the others.
An ablation or control (``braincl+raw``, ``er+balanced``, ``derpp+fixedhead``) keeps its method's
marker, hollow, in a shade of its method's colour chosen by a stable hash of the variant's name.

Sizes: ``SINGLE_COLUMN`` (3.3 in) and ``DOUBLE_COLUMN`` (7 in) wide figures with 7-pt text, the size
of a caption in a two-column paper. Figures are saved at their exact size (no tight bounding box),
PNG beside a vector PDF, with no dates in the files.

Public API for other plotting code: ``method_style(name) -> (label, colour, marker)``,
``line_kw(name)`` (keyword arguments for ``Axes.plot`` / ``errorbar``), ``method_order(names)``
(the tables' order), ``apply()``, ``figure()``, ``save()`` and ``layout_problems(fig)``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from .outputs import FIGURE_FORMATS, UPPER_BOUNDS  # noqa: E402

HIGHLIGHT = "braincl"
SINGLE_COLUMN = 3.3   # inches: one column of a two-column paper
DOUBLE_COLUMN = 7.0   # inches: the full text width
FONT_PT = 7.0
DPI = 200             # PNG resolution; the PDF is vector

# Okabe-Ito (hex from the original "Color Universal Design" page); yellow is left out: too pale
# for lines on white.
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "blue": "#0072B2",
             "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000", "grey": "#999999"}


class MethodStyle(NamedTuple):
    label: str
    colour: str
    marker: str


# id: (display name, colour, marker, line style). Methods sharing a colour differ in marker and dash.
METHODS = {
    "braincl": ("BrainCL", OKABE_ITO["vermillion"], "o", "-"),
    "er": ("ER", OKABE_ITO["blue"], "s", "-"),
    "derpp": ("DER++", OKABE_ITO["green"], "^", "-"),
    "der": ("DER", OKABE_ITO["green"], "v", "--"),
    "icarl": ("iCaRL", OKABE_ITO["orange"], "D", "-"),
    "jpeg_replay": ("JPEG replay", OKABE_ITO["sky"], "P", "-"),
    "gen_replay": ("Gen. replay", OKABE_ITO["purple"], "X", "-"),
    "bic": ("BiC", OKABE_ITO["blue"], "<", "--"),
    "wa": ("WA", OKABE_ITO["orange"], ">", "--"),
    "lwf": ("LwF", OKABE_ITO["purple"], "d", "--"),
    "ewc": ("EWC", OKABE_ITO["sky"], "h", "--"),
    "finetune": ("Fine-tune", OKABE_ITO["grey"], "p", ":"),
    "joint": ("Joint", OKABE_ITO["black"], "*", ":"),
}
# Codecs of the rate-distortion benchmark take the style of the method that stores with them.
ALIASES = {"braincl_codec": "braincl", "jpeg": "jpeg_replay"}
ALIAS_LABELS = {"braincl_codec": "BrainCL codec", "jpeg": "JPEG", "raw": "raw uint8"}
UNKNOWN_COLOURS = ("#666666", "#882255", "#117733", "#332288", "#AA4499", "#44AA99")  # Tol's muted, darker half
UNKNOWN_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _stable_index(text: str, n: int) -> int:
    """An index in range(n) fixed by ``text`` (Python's hash() changes between processes)."""
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % n


def _shade(colour: str, amount: float) -> str:
    """``colour`` mixed with black (amount < 0) or white (amount > 0)."""
    rgb = mcolors.to_rgb(colour)
    target = (1.0, 1.0, 1.0) if amount > 0 else (0.0, 0.0, 0.0)
    a = abs(amount)
    return mcolors.to_hex(tuple((1 - a) * c + a * t for c, t in zip(rgb, target)))


def split_variant(name: str) -> tuple[str, str]:
    base, _, variant = str(name).partition("+")
    return base, variant


def _base(name: str) -> tuple[str, str, str, str]:
    """(label, colour, marker, line style) of a method id without a variant."""
    if name in METHODS:
        return METHODS[name]
    if name in ALIASES:
        label, colour, marker, ls = METHODS[ALIASES[name]]
        return ALIAS_LABELS[name], colour, marker, ls
    if name in ALIAS_LABELS:
        return ALIAS_LABELS[name], OKABE_ITO["grey"], "o", ":"
    return (name, UNKNOWN_COLOURS[_stable_index(name, len(UNKNOWN_COLOURS))],
            UNKNOWN_MARKERS[_stable_index(name + "/marker", len(UNKNOWN_MARKERS))], "-.")


VARIANT_SHADES = (-0.35, 0.35, -0.55, 0.5)   # darker, lighter, much darker, much lighter
VARIANT_DASHES = ("--", "-.", ":")


def method_style(name: str) -> MethodStyle:
    """Display name, colour and marker of a method id (``er``) or a variant (``er+balanced``)."""
    base, variant = split_variant(name)
    label, colour, marker, _ = _base(base)
    if variant:
        colour = _shade(colour, VARIANT_SHADES[_stable_index(variant, len(VARIANT_SHADES))])
        label = f"{label} ({variant})"
    return MethodStyle(label, mcolors.to_hex(colour), marker)  # '#rrggbb', as matplotlib reports colours


def label(name: str) -> str:
    return method_style(name).label


def colour(name: str) -> str:
    return method_style(name).colour


def line_kw(name: str, markersize: float = 3.5) -> dict:
    """Keyword arguments for ``plot`` / ``errorbar``: colour, marker, dash, width, z-order and label.
    BrainCL gets a thicker line and the top z-order; a variant a hollow marker and its own dash."""
    base, variant = split_variant(name)
    st = method_style(name)
    ls = _base(base)[3]
    if variant:
        ls = VARIANT_DASHES[_stable_index(variant + "/dash", len(VARIANT_DASHES))]
    top = base == HIGHLIGHT
    return {"color": st.colour, "marker": st.marker, "ls": ls, "label": st.label, "ms": markersize * (1.2 if top else 1),
            "lw": 1.8 if top else 1.0, "zorder": 5 if top else 3, "mfc": "white" if variant else st.colour,
            "mec": st.colour, "mew": 0.8}


def method_order(methods) -> list[str]:
    """The tables' order: methods by id, upper bounds (joint) last; a variant after its method."""
    def key(m):
        base, variant = split_variant(m)
        return (base in UPPER_BOUNDS, base, variant)
    return sorted(set(map(str, methods)), key=key)


def drawing_order(methods) -> list[str]:
    """``method_order`` with BrainCL last, so that it is drawn on top."""
    order = method_order(methods)
    return [m for m in order if split_variant(m)[0] != HIGHLIGHT] + [m for m in order if split_variant(m)[0] == HIGHLIGHT]


def palette(methods) -> dict[str, str]:
    """Method -> colour (for seaborn's ``palette=``)."""
    return {m: colour(m) for m in method_order(methods)}


def apply() -> None:
    """Matplotlib settings for every figure: 7-pt text, light grid, no frame on legends, TrueType
    fonts in the PDF, exact figure size when saving."""
    plt.rcdefaults()
    plt.rcParams.update({
        "font.size": FONT_PT, "axes.titlesize": FONT_PT + 0.5, "axes.labelsize": FONT_PT,
        "xtick.labelsize": FONT_PT - 0.5, "ytick.labelsize": FONT_PT - 0.5, "legend.fontsize": FONT_PT - 0.5,
        "figure.titlesize": FONT_PT + 1, "axes.titlepad": 3.0, "axes.labelpad": 2.0,
        "axes.grid": True, "grid.color": "#dddddd", "grid.linewidth": 0.5, "axes.axisbelow": True,
        "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.6,
        "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
        "xtick.minor.size": 1.5, "ytick.minor.size": 1.5,
        "legend.frameon": False, "legend.handlelength": 2.2, "legend.columnspacing": 1.2, "legend.handletextpad": 0.4,
        "lines.linewidth": 1.0, "lines.markersize": 3.5, "errorbar.capsize": 1.5,
        "figure.dpi": DPI, "savefig.dpi": DPI, "savefig.bbox": None, "savefig.facecolor": "white",
        "pdf.fonttype": 42, "ps.fonttype": 42, "svg.hashsalt": "braincl",
        "figure.constrained_layout.h_pad": 0.03, "figure.constrained_layout.w_pad": 0.03,
    })


def figure(width: float = DOUBLE_COLUMN, height: float = 2.4, nrows: int = 1, ncols: int = 1, **kw):
    """A figure of exactly ``width`` x ``height`` inches, constrained layout, axes as a flat list."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained", **kw)
    return fig, list(axes.flat)


def method_legend(fig, handles: dict, ncols: int | None = None, loc: str = "outside upper center", **kw):
    """One legend for the whole figure, outside the axes (constrained layout makes room), from
    ``{method id: handle}``, in the tables' order."""
    if not handles:
        return None
    order = method_order(handles)
    ncols = ncols or min(len(order), 7)
    nrows = -(-len(order) // ncols)
    # matplotlib fills a legend column by column; reorder so that it reads row by row
    grid = [order[r * ncols:(r + 1) * ncols] for r in range(nrows)]
    order = [row[c] for c in range(ncols) for row in grid if c < len(row)]
    return fig.legend([handles[m] for m in order], [label(m) for m in order], loc=loc, ncols=ncols, **kw)


def placeholder(note: str, width: float = SINGLE_COLUMN):
    """A figure that says why it is empty, so that declared outputs always exist."""
    import textwrap

    fig, (ax,) = figure(width, 1.2)
    ax.axis("off")
    ax.text(0.5, 0.5, textwrap.fill(note, 60), ha="center", va="center", fontsize=FONT_PT)
    return fig


# No dates and no library versions in the files: the same records give the same bytes.
METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "ModDate": None, "Producer": None,
                                                "Creator": None}}


def save(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Write PNG and PDF atomically (a temporary file renamed into place)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in FIGURE_FORMATS]
    for p in paths:
        ext = p.suffix[1:]
        tmp = p.with_name(f".{p.name}.tmp")
        fig.savefig(tmp, format=ext, metadata=METADATA.get(ext))
        tmp.replace(p)
    plt.close(fig)
    return paths


# --- layout check ---------------------------------------------------------------------------------

def _drawn_texts(fig, renderer):
    """(description, bbox) of every visible non-empty text the saved figure draws: titles, labels,
    annotations, legend entries and the tick labels of ticks inside the view limits."""
    from matplotlib.text import Text

    tick_labels = set()
    drawn_ticks = set()
    for ax in fig.get_axes():
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick_labels.update({id(tick.label1), id(tick.label2)})
            for tick in axis._update_ticks():  # the ticks inside the view limits, the ones drawn
                drawn_ticks.update({id(tick.label1), id(tick.label2)})
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip() or t.figure is None:
            continue
        if id(t) in tick_labels and id(t) not in drawn_ticks:
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        if not all(a.get_visible() for a in _parents(t)):
            continue
        bbox = t.get_window_extent(renderer)
        if bbox.width < 0.5 or bbox.height < 0.5:
            continue
        out.append((t, bbox))
    return out


def _parents(artist):
    """Containers of ``artist`` (its axes, its legend), to skip texts inside hidden ones."""
    found = []
    ax = getattr(artist, "axes", None)
    if ax is not None:
        found.append(ax)
    for leg in _legends(artist.figure):
        if artist in leg.get_texts() or artist is leg.get_title():
            found.append(leg)
    return found


def _legends(fig):
    from matplotlib.legend import Legend

    return [leg for leg in fig.findobj(Legend) if leg.get_visible()]


def _describe(t) -> str:
    return repr(t.get_text()[:40])


def layout_problems(fig, tolerance_px: float = 0.5) -> list[str]:
    """Everything wrong with the layout of ``fig`` as it would be saved: two visible texts that
    overlap, a text outside the saved image, a legend over a text that is not its own or over data
    markers of a method other than the entry's. Empty when the layout is clean."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    texts = _drawn_texts(fig, renderer)
    problems = []
    for t, b in texts:
        if b.x0 < page.x0 - tolerance_px or b.y0 < page.y0 - tolerance_px or b.x1 > page.x1 + tolerance_px \
                or b.y1 > page.y1 + tolerance_px:
            problems.append(f"text {_describe(t)} falls outside the saved image")
    for i, (t1, b1) in enumerate(texts):
        for t2, b2 in texts[i + 1:]:
            w = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
            h = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
            if w > tolerance_px and h > tolerance_px:
                problems.append(f"texts {_describe(t1)} and {_describe(t2)} overlap")
    for leg in _legends(fig):
        lb = leg.get_window_extent(renderer)
        own = {id(x) for x in leg.get_texts()} | {id(leg.get_title())}
        for t, b in texts:
            if id(t) in own:
                continue
            if lb.overlaps(b) and (min(lb.x1, b.x1) - max(lb.x0, b.x0)) > tolerance_px \
                    and (min(lb.y1, b.y1) - max(lb.y0, b.y0)) > tolerance_px:
                problems.append(f"legend covers text {_describe(t)}")
        for ax in fig.get_axes():
            if not ax.get_visible():
                continue
            for line in ax.get_lines():
                if not line.get_visible() or line.get_marker() in (None, "", "None", " "):
                    continue
                xy = line.get_xydata()
                if not len(xy):
                    continue
                pts = line.get_transform().transform(xy)
                inside = (pts[:, 0] > lb.x0) & (pts[:, 0] < lb.x1) & (pts[:, 1] > lb.y0) & (pts[:, 1] < lb.y1)
                if inside.any():
                    problems.append(f"legend covers data markers of {line.get_label()!r}")
    return problems
