"""The whole network in one picture, drawn from the model itself.

`draw_network("lite")` asks `diagram_layout.layout_network` for the boxes, arrows and labels (read
from the model: shapes from one meta forward pass, parameter counts from its modules), then paints
them. Nothing is placed by hand here, so the picture cannot drift from the code. Each box shows its
output shape (channels x height x width for an `img_size` input) and its own parameter count;
the column headers give each module's total. A module the config switches off (use_pee, use_ia,
use_cff, use_aspp, deep_supervision = False) is drawn grey and dashed, labelled "off". `highlight`
colours the blocks a notebook is about and mutes the rest.

Every patch carries its block's group as its gid ("backbone", "pee", ...), so tests can find them.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import nn

from ..errors import ConfigError
from ..model.banet import BANet
from ..model.config import BANetConfig
from ..model.registry import build_model, family_of
from .diagram_layout import Arrow, Box, Label, Layout, format_count, layout_network
from .plots import _new_figure

# highlight name -> what the notebook that shows it covers (said in the title)
BLOCKS: dict[str, str] = {
    "backbone": "the dilated ResNet backbone",
    "pee": "PEE, pyramid edge extraction",
    "mtl": "mini-MTL with interactive attention (IA)",
    "cff": "CFF, cross feature fusion",
    "aspp": "ASPP, atrous spatial pyramid pooling",
    "decoder": "the top-down decoder",
    "loss": "the joint loss",
}

# group -> (face colour, edge colour) when drawn normally; highlighted groups get the strong colour
COLOURS = {
    "input": ("#f2f2f2", "#7f7f7f"),
    "backbone": ("#dbe8f6", "#3b6ea8"),
    "reduce": ("#ececec", "#6f6f6f"),
    "pee": ("#fde3c8", "#c8671a"),
    "mtl": ("#d9efd6", "#3b8a3b"),
    "cff": ("#e8ddf3", "#7048a0"),
    "aspp": ("#f8d9dc", "#b03a48"),
    "decoder": ("#d5efee", "#23817c"),
    "loss": ("#fbf1c4", "#a88400"),
}
STRONG = {
    "backbone": "#6fa3dc", "pee": "#f4a259", "mtl": "#72bf6a", "cff": "#a782d0",
    "aspp": "#e07a86", "decoder": "#5cbcb6", "loss": "#f0cf48",
}
MUTED = ("#f7f7f7", "#c4c4c4", "#9a9a9a")  # face, edge, text of a block outside the highlight
OFF = ("#eeeeee", "#9a9a9a", "#8a8a8a")  # face, edge, text of a block the config switches off
ARROW = "#404040"


def _resolve(model) -> BANet:
    """A BANet from a preset name, a config or a built network; for a name or a config, built on
    the meta device (no weights allocated: the paper preset builds in a fraction of a second)."""
    if not isinstance(model, nn.Module):
        family = family_of(model)  # an unknown preset name: ConfigError
        if family.config_class is not BANetConfig:
            raise ConfigError(f"draw_network draws BA-Net, not the {family.name} "
                              f"(preset {_preset_name(model)!r})")
        with torch.device("meta"):
            model = build_model(model)
    if not isinstance(model, BANet):
        raise ConfigError(f"draw_network draws BA-Net; got a {type(model).__name__} "
                          "(give a preset name or a BANet)")
    return model


def _preset_name(model) -> str:
    return model if isinstance(model, str) else getattr(model, "preset", type(model).__name__)


def _highlight_set(highlight) -> set[str]:
    if highlight is None:
        return set()
    names = [highlight] if isinstance(highlight, str) else list(highlight)
    for name in names:
        if name not in BLOCKS:
            raise ConfigError(f"highlight={name!r}: unknown block; choose from {list(BLOCKS)}")
    return set(names)


class _Painter:
    """Paints a Layout onto one axes spanning the figure, in the layout's units (0.1 inch)."""

    def __init__(self, ax, highlight: set[str]):
        self.ax, self.highlight = ax, highlight

    def colours(self, groups: Iterable[str], off: bool) -> tuple[str, str, str, float]:
        """face, edge, text colour and edge width of a block in `groups`
        (its first is its colour)."""
        groups = list(groups)
        if off:
            return (*OFF, 0.9)
        if not self.highlight:
            face, edge = COLOURS[groups[0]]
            return face, edge, "black", 1.0
        if self.highlight & set(groups):
            lit = next(g for g in groups if g in self.highlight)
            return STRONG[lit], "black", "black", 1.6
        return (*MUTED, 0.8)

    def line_colour(self, style: str) -> str:
        if style == "off":
            return OFF[1]
        if style == "loss":  # the side outputs' dashes
            return (MUTED[1] if self.highlight and "loss" not in self.highlight
                    else COLOURS["loss"][1])
        if style == "cff":
            return self.colours(["cff"], False)[1]
        return ARROW

    def box(self, b: Box) -> None:
        face, edge, ink, lw = self.colours(b.groups, b.off)
        patch = FancyBboxPatch((b.x0, b.yc - b.h / 2), b.x1 - b.x0, b.h,
                               boxstyle="round,pad=0,rounding_size=0.8", facecolor=face,
                               edgecolor=edge, linewidth=lw, linestyle="--" if b.off else "-",
                               zorder=2)
        patch.set_gid(b.gid or b.groups[0])
        self.ax.add_patch(patch)
        self.ax.text((b.x0 + b.x1) / 2, b.yc, b.text, ha="center", va="center", fontsize=b.fontsize,
                     color=ink, linespacing=1.2, zorder=4)

    def arrow(self, a: Arrow) -> None:
        """A polyline from points[0] to points[-1], with an arrow head at the end
        (both ends with `both`)."""
        colour, ls = self.line_colour(a.style), "--" if a.dashed else "-"
        for p, q in zip(a.points[:-2], a.points[1:-1]):  # the plain segments
            self.ax.plot([p[0], q[0]], [p[1], q[1]], color=colour, lw=a.lw, ls=ls, zorder=3,
                         solid_capstyle="butt")
        style = ("<|-|>" if a.both else "-|>") if a.head else "-"
        patch = FancyArrowPatch(a.points[-2], a.points[-1], arrowstyle=style, mutation_scale=7,
                                color=colour, lw=a.lw, linestyle=ls, shrinkA=0, shrinkB=0, zorder=3)
        if a.halo:
            patch.set_path_effects([patheffects.withStroke(linewidth=3.5, foreground="white")])
            patch.set_zorder(3.5)
        self.ax.add_patch(patch)

    def label(self, t: Label) -> None:
        colour = t.colour or (self.line_colour(t.line) if t.line
                              else self.colours(t.groups, t.off)[2])
        self.ax.text(t.x, t.y, t.text, ha=t.ha, va="center", fontsize=t.fontsize, color=colour,
                     zorder=4, weight="bold" if t.bold else "normal", linespacing=t.linespacing)


def render(layout: Layout, highlight: set[str] = frozenset()) -> Figure:
    """Paint `layout`: the highlighted groups strong, the rest muted (all in their colours without
    one)."""
    fig = _new_figure(figsize=(13, 5.5), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 130)
    ax.set_ylim(0, 55)
    ax.axis("off")
    title = layout.title
    if highlight:
        title += "  |  this notebook: " + "; ".join(BLOCKS[b] for b in BLOCKS if b in highlight)
    fig.suptitle(title, y=0.975, fontsize=11, weight="bold")
    painter = _Painter(ax, set(highlight))
    for b in layout.boxes:
        painter.box(b)
    for a in layout.arrows:
        painter.arrow(a)
    for t in layout.labels:
        painter.label(t)
    return fig


def draw_network(model: str | BANetConfig | BANet = "lite",
                 highlight: str | Iterable[str] | None = None, img_size: int = 256) -> Figure:
    """BA-Net as one block diagram, read from `model`: a preset name ("tiny", "lite", "paper"),
    a config, or a built BANet. Shapes are for an `img_size` x `img_size` input. `highlight`: one
    of BLOCKS' names, or a list of them, drawn strong with the rest muted; the title names what they
    are."""
    lit = _highlight_set(highlight)
    return render(layout_network(_resolve(model), img_size), lit)


__all__ = ["BLOCKS", "draw_network", "format_count", "layout_network", "render"]
