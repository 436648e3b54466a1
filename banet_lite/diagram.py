"""The whole network in one picture, drawn from the model itself.

`draw_network("lite")` builds the preset (on the `meta` device: no weights are allocated, so even
the 42.8 M-parameter paper preset takes a fraction of a second), runs one forward pass on a meta
tensor to read every tensor's shape, and counts each module's parameters. Nothing is drawn by
hand, so the picture cannot drift from the code. The layout follows the data, FPN-style: the
backbone goes up (bottom-up), the decoder comes down (top-down):

       .------------------------------ x4 ----------------------------------.
       |                                                                     v
    layer 4 -> reduce -> PEE -> mini-MTL + IA -> | . | -> d4 <-------------- ASPP
       ^                                   :     |   |    |
    layer 3 -> reduce -> PEE -> mini-MTL + IA -> | C | -> d3
       ^                                   :     | F |    |
    layer 2 -> reduce -> PEE -> mini-MTL + IA -> | F | -> d2
       ^                                   :     |   |    |
    layer 1 -> reduce -> PEE -> mini-MTL + IA -> | . | -> d1 -> head -> logits
       ^                                   :                                 |
    input -> stem          side mask i, side edge i ............> joint loss <-'

Each box shows its output shape (channels x height x width for an `img_size` input) and its own
parameter count; the column headers give each module's total. A module the config switches off
(use_pee, use_ia, use_cff, use_aspp, deep_supervision = False) is drawn grey and dashed, labelled
"off". `highlight` colours the blocks a notebook is about and mutes the rest.

Every patch carries its block's group as its gid ("backbone", "pee", ...), so tests can find them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import nn

from .config import ABLATIONS, BANetConfig
from .errors import ConfigError
from .model import BANet, build_model, count_parameters, family_of
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

# ---------------------------------------------------------------------------------------------------------
# What the picture shows, read from the model: shapes from one meta forward pass, parameter counts
# ---------------------------------------------------------------------------------------------------------


def format_count(n: int) -> str:
    """A parameter count as the diagram prints it: 950, 17.8 k, 2.36 M."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1e3:.1f} k"
    return f"{n / 1e6:.2f} M"


Shape = tuple[int, int, int]  # (C, h, w)


def _shape(t) -> Shape:
    """(B, C, h, w) tensor -> (C, h, w)."""
    return tuple(t.shape[1:])


def fmt(shape: Shape) -> str:
    """(C, h, w) -> "C x hxw", as the boxes print it."""
    c, h, w = shape
    return f"{c} x {h}x{w}"


@dataclass
class Shapes:
    """Each tensor's (C, h, w), from one forward pass."""

    stem: Shape = (0, 0, 0)
    stages: list[Shape] = field(default_factory=list)  # x_1..x_4
    reduced: list[Shape] = field(default_factory=list)  # F'_1..F'_4
    pee: list[Shape] = field(default_factory=list)  # P_1..P_4
    seg: list[Shape] = field(default_factory=list)  # S_1..S_4
    fused: list[Shape] = field(default_factory=list)  # C_1..C_4 (the decoder's inputs)
    aspp: Shape = (0, 0, 0)
    decoder: list[Shape] = field(default_factory=list)  # d4, d3, d2, d1
    head: Shape = (0, 0, 0)  # logits at stage 1's size
    logits: Shape = (0, 0, 0)  # logits at the input size


def _meta_twin(model: BANet) -> BANet:
    """`model` itself if its weights are on the meta device, else a copy there (no weights copied when
    the config rebuilds the same structure)."""
    if next(model.parameters()).is_meta:
        return model
    with torch.device("meta"):
        twin = BANet(model.config)
    if count_parameters(twin) != count_parameters(model):  # changed after building: copy the modules
        twin = copy.deepcopy(model).to("meta")
    return twin


def trace_shapes(model: BANet, img_size: int = 256) -> Shapes:
    """Run `model` (or its meta twin) once on a meta (1, C, img_size, img_size) tensor; hooks note every shape."""
    net = _meta_twin(model)
    s = Shapes()
    hooks = []

    def note(module: nn.Module | None, record) -> None:
        """After `module` runs, `record(its output)`; the hook returns None, so the output stays as it is."""
        if module is not None:
            hooks.append(module.register_forward_hook(lambda _m, _args, out: record(out) and None))

    note(net.backbone.maxpool, lambda out: setattr(s, "stem", _shape(out)))
    note(net.backbone, lambda feats: s.stages.extend(map(_shape, feats)))
    for i in range(4):
        note(net.reduce[i], lambda out: s.reduced.append(_shape(out)))
        note(net.pee[i], lambda out: s.pee.append(_shape(out[0])))  # (P_i, edges)
        note(net.mtl[i], lambda out: s.seg.append(_shape(out["seg_features"])))
    note(net.aspp, lambda out: setattr(s, "aspp", _shape(out)))
    dec = net.decoder
    hooks.append(dec.register_forward_pre_hook(lambda _m, args: s.fused.extend(map(_shape, args[0])) and None))
    note(dec.top, lambda out: s.decoder.append(_shape(out)))
    for up in dec.up:
        note(up, lambda out: s.decoder.append(_shape(out)))
    note(dec.head, lambda out: setattr(s, "head", _shape(out)))
    training = net.training
    net.eval()  # ASPP's image pooling gives one value per channel: BN refuses a batch of one in training
    try:
        with torch.no_grad():
            x = torch.empty(1, net.config.in_channels, img_size, img_size, device="meta")
            out = net(x, return_maps=True)  # the full forward, every optional branch included
    finally:
        net.train(training)
        for h in hooks:
            h.remove()
    if dec.top is None:  # no ASPP: d4 is the fourth fused map itself
        s.decoder.insert(0, s.fused[3])
    s.logits = _shape(out.logits)
    return s


def _resolve(model) -> BANet:
    """A BANet from a preset name, a config or a built network; for a name or a config, built on the meta
    device (no weights allocated: the paper preset builds in a fraction of a second)."""
    if not isinstance(model, nn.Module):
        family = family_of(model)  # an unknown preset name: ConfigError
        if family.config_class is not BANetConfig:
            raise ConfigError(f"draw_network draws BA-Net, not the {family.name} (preset {_preset_name(model)!r})")
        with torch.device("meta"):
            model = build_model(model)
    if not isinstance(model, BANet):
        raise ConfigError(f"draw_network draws BA-Net; got a {type(model).__name__} (give a preset name or a BANet)")
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


def _stage_blocks(layer: nn.Sequential) -> tuple[int, int, list[int]]:
    """(blocks, stride, dilations) of a backbone stage, read from its 3x3 convs."""
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    return len(layer), max(c.stride[0] for c in convs), list(dict.fromkeys(c.dilation[0] for c in convs))


# ---------------------------------------------------------------------------------------------------------
# Drawing: one axes over the whole figure, in units of 0.1 inch (x 0..130, y 0..55)
# ---------------------------------------------------------------------------------------------------------

W, H = 130, 55
ROW_Y = [12.5, 20.5, 28.5, 36.5]  # stage 1 (bottom) .. stage 4 (top): the backbone goes up
ROW_H = 6.4
COLS = {  # column -> (x0, x1)
    "backbone": (1, 19), "reduce": (22, 32), "pee": (35, 45), "mtl": (48, 60), "side": (62.5, 70.5),
    "cff": (75.5, 84.5), "decoder": (87.5, 99.5), "aspp": (103.5, 115.5), "head": (102.5, 113.5),
    "logits": (116.5, 129),
}
BUS_X, BUS_Y = 72.5, 3.0  # the dashed line that takes the side outputs to the loss


class _Painter:
    def __init__(self, ax, highlight: set[str]):
        self.ax, self.highlight = ax, highlight

    def colours(self, groups: Iterable[str], off: bool) -> tuple[str, str, str, float]:
        """face, edge, text colour and edge width of a block in `groups` (its first is its colour)."""
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

    def line_colour(self, group: str, off: bool = False) -> str:
        """The colour of a line that belongs to `group` (the side outputs' dashes: "loss")."""
        if off:
            return OFF[1]
        return MUTED[1] if self.highlight and group not in self.highlight else COLOURS[group][1]

    def box(self, x0, x1, yc, h, text, groups, off=False, fontsize=7.5, weight="normal", gid=None):
        face, edge, ink, lw = self.colours(groups, off)
        patch = FancyBboxPatch((x0, yc - h / 2), x1 - x0, h, boxstyle="round,pad=0,rounding_size=0.8",
                               facecolor=face, edgecolor=edge, linewidth=lw, linestyle="--" if off else "-",
                               zorder=2)
        patch.set_gid(gid or groups[0])
        self.ax.add_patch(patch)
        self.ax.text((x0 + x1) / 2, yc, text, ha="center", va="center", fontsize=fontsize, color=ink,
                     linespacing=1.2, weight=weight, zorder=4)
        return patch

    def arrow(self, points, dashed=False, colour=ARROW, head=True, lw=0.9, halo=False, both=False):
        """A polyline from points[0] to points[-1], with an arrow head at the end (both ends with `both`)."""
        style = ("<|-|>" if both else "-|>") if head else "-"
        for a, b in zip(points[:-2], points[1:-1]):  # the plain segments
            self.ax.plot([a[0], b[0]], [a[1], b[1]], color=colour, lw=lw, ls="--" if dashed else "-",
                         zorder=3, solid_capstyle="butt")
        arr = FancyArrowPatch(points[-2], points[-1], arrowstyle=style, mutation_scale=7, color=colour, lw=lw,
                              linestyle="--" if dashed else "-", shrinkA=0, shrinkB=0, zorder=3)
        if halo:  # drawn over the side-output line with a white rim: a crossing, not a junction
            arr.set_path_effects([patheffects.withStroke(linewidth=3.5, foreground="white")])
            arr.set_zorder(3.5)
        self.ax.add_patch(arr)

    def text(self, x, y, s, **kw):
        kw = {"ha": "center", "va": "center", "fontsize": 7, "zorder": 4, **kw}
        return self.ax.text(x, y, s, **kw)


def draw_network(model: str | BANetConfig | BANet = "lite", highlight: str | Iterable[str] | None = None,
                 img_size: int = 256) -> Figure:
    """BA-Net as one block diagram, read from `model`: a preset name ("tiny", "lite", "paper"), a config,
    or a built BANet. Shapes are for an `img_size` x `img_size` input. `highlight`: one of BLOCKS'
    names, or a list of them, drawn strong with the rest muted; the title names what they are."""
    lit = _highlight_set(highlight)
    net = _resolve(model)
    cfg = net.config
    s = trace_shapes(net, img_size)
    n_params = {name: count_parameters(getattr(net, name)) if getattr(net, name) is not None else 0
                for name in ("backbone", "reduce", "pee", "mtl", "cff", "aspp", "decoder")}

    fig = _new_figure(figsize=(13, 5.5), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, W)
    ax.set_ylim(0, H)
    ax.axis("off")
    p = _Painter(ax, lit)
    col = COLS

    def cx(name):
        return sum(col[name]) / 2

    def top(i):
        return ROW_Y[i] + ROW_H / 2

    def bottom(i):
        return ROW_Y[i] - ROW_H / 2

    # --- title ---
    off = [label for switch, label in ABLATIONS.items() if not getattr(cfg, switch)]
    variant = f"{cfg.preset} preset" + (f", {', '.join(off)} off" if off else "")
    title = f"BA-Net ({variant}): {format_count(count_parameters(net))} parameters"
    if lit:
        title += "  |  this notebook: " + "; ".join(BLOCKS[b] for b in BLOCKS if b in lit)
    fig.suptitle(title, y=0.975, fontsize=11, weight="bold")

    # --- column headers: each module's total ---
    backbone = net.backbone
    # what is switched on, read from the modules (a switched-off module is None or built without its part)
    pee_on, ia_on, heads = net.pee[0].enabled, net.mtl[0].ia is not None, net.mtl[0].seg_head is not None
    side_params = sum(count_parameters(m) for mtl in net.mtl for m in (mtl.seg_head, mtl.edge_head) if m is not None)
    headers = [  # (column, name, parameters, groups, switched off)
        ("backbone", f"backbone: ResNet-{backbone.depth}, OS {cfg.output_stride}", n_params["backbone"],
         "backbone", False),
        ("reduce", "reduce x4", n_params["reduce"], "reduce", False),
        ("pee", "PEE x4" + ("" if pee_on else " (off)"), n_params["pee"], "pee", not pee_on),
        ("mtl", "mini-MTL + IA x4" if ia_on else "mini-MTL x4 (IA off)", n_params["mtl"], "mtl", False),
        ("side", "side heads (in MTL)" if heads else "side heads (off)", side_params, "mtl loss", not heads),
        ("cff", "CFF" + ("" if net.cff is not None else " (off)"), n_params["cff"], "cff", net.cff is None),
        ("decoder", "decoder (top-down)", n_params["decoder"], "decoder", False),
    ]
    for column, label, n, groups, switched_off in headers:
        ink = p.colours(groups.split(), switched_off)[2]
        x, ha = (col[column][0], "left") if column == "backbone" else (cx(column), "center")
        p.text(x, 42.3, f"{label}\n{format_count(n)}", weight="bold", color=ink, ha=ha)

    # --- input and stem (below layer 1) ---
    bot_y, bot_h = 4.3, 6.6
    p.box(0.5, 6.5, bot_y, bot_h, f"input\n{cfg.in_channels} x\n{img_size}x{img_size}", ["input"])
    stem_params = n_params["backbone"] - sum(count_parameters(getattr(backbone, f"layer{i}")) for i in (1, 2, 3, 4))
    k, stride, pool = backbone.conv1.kernel_size[0], backbone.conv1.stride[0], backbone.maxpool.stride
    p.box(8, 19, bot_y, bot_h, f"stem {k}x{k} /{stride},\nmax-pool /{pool}\n{fmt(s.stem)}\n"
                               f"{format_count(stem_params)}", ["backbone"], fontsize=6.5)
    p.arrow([(6.5, bot_y), (8, bot_y)])
    p.arrow([(13.5, bot_y + bot_h / 2), (13.5, bottom(0))])

    for i in range(4):
        y = ROW_Y[i]
        # backbone stage i
        layer = getattr(backbone, f"layer{i + 1}")
        blocks, stride, dilations = _stage_blocks(layer)
        name = f"layer {i + 1}: {blocks} blocks"
        if stride > 1:
            name += f", /{stride}"
        if max(dilations) > 1:
            name += ", dil " + ",".join(map(str, dilations))
        p.box(*col["backbone"], y, ROW_H, f"{name}\n{fmt(s.stages[i])}\n{format_count(count_parameters(layer))}",
              ["backbone"])
        if i < 3:
            p.arrow([(7, top(i)), (7, bottom(i + 1))])
        # reduce 1x1 C_i -> R
        p.arrow([(col["backbone"][1], y), (col["reduce"][0], y)])
        conv = net.reduce[i]
        p.box(*col["reduce"], y, ROW_H, f"1x1 {conv.in_channels}\u2192{conv.out_channels}\n{fmt(s.reduced[i])}\n"
                                        f"{format_count(count_parameters(net.reduce[i]))}", ["reduce"])
        # PEE
        pee = net.pee[i]
        p.arrow([(col["reduce"][1], y), (col["pee"][0], y)])
        pee_name = f"PEE {pee.kernels}" if pee.enabled else "PEE off\n(1x1 + DW on F')"
        p.box(*col["pee"], y, ROW_H, f"{pee_name}\n{fmt(s.pee[i])}\n{format_count(count_parameters(pee))}", ["pee"],
              off=not pee.enabled, fontsize=7.5 if pee.enabled else 6.8)
        # mini-MTL with IA
        mtl = net.mtl[i]
        p.arrow([(col["pee"][1], y), (col["mtl"][0], y)])
        mtl_name = "mini-MTL + IA\ne \u21c4 s" if mtl.ia is not None else "mini-MTL, IA off\ne | s"
        p.box(*col["mtl"], y, ROW_H, f"{mtl_name}\n{fmt(s.seg[i])}\n{format_count(count_parameters(mtl))}", ["mtl"])
        # side outputs: side mask i (upper), side edge i (middle), to the loss along the dashed line
        side_on = mtl.seg_head is not None
        for dy, kind in ((1.9, "mask"), (-0.1, "edge")):
            ty = y + dy
            label = f"side {kind} {i + 1}" if side_on else f"side {kind} off"
            p.box(*col["side"], ty, 1.7, label, ["mtl", "loss"], off=not side_on, fontsize=6, gid="side")
            p.arrow([(col["mtl"][1], ty), (col["side"][0], ty)], dashed=not side_on,
                    colour=ARROW if side_on else OFF[1])
            p.arrow([(col["side"][1], ty), (BUS_X, ty)], head=False, dashed=True,
                    colour=p.line_colour("loss", not side_on))
        # S_i -> CFF (crosses the side-output line)
        p.arrow([(col["mtl"][1], y - 2.2), (col["cff"][0], y - 2.2)], halo=True)
        # CFF_i -> d_i
        p.arrow([(col["cff"][1], y - 2.2), (col["decoder"][0], y - 2.2)])

    # --- the side-output line: down the column, along the bottom, into the loss ---
    bus = p.line_colour("loss", not heads)
    p.arrow([(BUS_X, ROW_Y[3] + 1.9), (BUS_X, BUS_Y), (col["head"][0], BUS_Y)], dashed=True, colour=bus, lw=1.0)
    p.text((BUS_X + col["head"][0]) / 2, BUS_Y + 1.1,
           f"4 side masks + 4 side edges, upsampled to {img_size}x{img_size}"
           if heads else "deep supervision off: no side outputs", fontsize=6.2, color=bus)

    # --- CFF: one box over the four stages, every stage feeding every other ---
    cff_top, cff_bottom = top(3), bottom(0)
    cff_off = net.cff is None
    p.box(col["cff"][0], col["cff"][1], (cff_top + cff_bottom) / 2, cff_top - cff_bottom, "", ["cff"], off=cff_off)
    for i in range(4):
        y = ROW_Y[i]
        if cff_off:
            label = f"S{i + 1} passes\n(CFF off)"
        else:
            label = f"CFF {i + 1}\n{format_count(count_parameters(net.cff[i]))}"
        p.text(cx("cff"), y + 0.9, label, fontsize=6.5, color=p.colours(["cff"], cff_off)[2])
        if i < 3 and not cff_off:
            p.arrow([(cx("cff"), y + 2.6), (cx("cff"), ROW_Y[i + 1] - 0.6)], both=True,
                    colour=p.colours(["cff"], False)[1])

    # --- ASPP on x4, top right; x4 runs along the top to it ---
    aspp_off = net.aspp is None
    ay = ROW_Y[3]
    x4_colour = OFF[1] if aspp_off else ARROW
    p.arrow([(17.5, top(3)), (17.5, 46.5), (cx("aspp"), 46.5), (cx("aspp"), ay + ROW_H / 2)], dashed=aspp_off,
            colour=x4_colour)
    p.text((cx("mtl") + cx("side")) / 2, 47.6, f"x4: {fmt(s.stages[3])} (layer 4 output)", fontsize=6.5,
           color=x4_colour)
    if aspp_off:
        aspp_text = "ASPP off\n(d4 = " + ("S4)" if cff_off else "C4)")
    else:
        rates = tuple(branch[0].dilation[0] for branch in net.aspp.branches[1:])  # the 3x3 branches
        aspp_text = f"ASPP {rates}\n{fmt(s.aspp)}\n{format_count(n_params['aspp'])}"
    p.box(*col["aspp"], ay, ROW_H, aspp_text, ["aspp"], off=aspp_off)
    if not aspp_off:
        p.arrow([(col["aspp"][0], ay), (col["decoder"][1], ay)])

    # --- decoder: d4 at the top down to d1, then the head and the logits ---
    dec = net.decoder
    step_params = [count_parameters(dec.top) if dec.top is not None else 0] + [count_parameters(u) for u in dec.up]
    c = "S" if cff_off else "C"  # what the decoder fuses: CFF's outputs C_i, else the S_i themselves
    for k, i in enumerate((3, 2, 1, 0)):  # d4, d3, d2, d1
        y = ROW_Y[i]
        if i == 3:
            name = f"d4 = Up[{c}4, ASPP]" if dec.top is not None else f"d4 = {c}4"
        else:
            name = f"d{i + 1} = Up[{c}{i + 1}, d{i + 2}]"
        p.box(*col["decoder"], y, ROW_H, f"{name}\n{fmt(s.decoder[k])}\n{format_count(step_params[k])}", ["decoder"])
        if i > 0:
            p.arrow([(cx("decoder") + 3, bottom(i)), (cx("decoder") + 3, top(i - 1))])
    y1 = ROW_Y[0]
    p.arrow([(col["decoder"][1], y1 + 1.2), (col["head"][0], y1 + 1.2)])
    head = f"head\n3x3, 1x1 \u2192 K\n{fmt(s.head)}\n{format_count(count_parameters(dec.head))}"
    p.box(*col["head"], y1, ROW_H, head, ["decoder"], fontsize=6.5)
    p.arrow([(col["head"][1], y1 + 1.2), (col["logits"][0], y1 + 1.2)])
    up = s.logits[1] / s.head[1]
    p.box(*col["logits"], y1, ROW_H, f"logits\n{fmt(s.logits)}\n(bilinear up x{up:g})", ["decoder"], fontsize=6.5)

    # --- the joint loss ---
    loss_lines = ["joint loss", "main: CE + Dice(logits, mask)"]
    loss_lines += ["+ side seg: CE(side mask i, mask)", "+ side edge: CE(side edge i, boundary)"] if heads \
        else ["(side terms off)"]
    p.box(col["head"][0], col["logits"][1], bot_y, bot_h, "\n".join(loss_lines), ["loss"], fontsize=6.5)
    p.arrow([(cx("logits"), bottom(0)), (cx("logits"), bot_y + bot_h / 2)])

    # --- what the numbers mean ---
    notes = [f"shapes: C x H x W for a {img_size}x{img_size} input",
             f"R = {cfg.reduce_dim} channels per stage, K = {cfg.num_classes} classes",
             f"PEE border rule: {cfg.border_rule}",
             "numbers under each shape: parameters",
             "solid arrows: features; dashed: to the loss"]
    p.text(col["head"][0], 24.5, "\n".join(notes), ha="left", va="center", fontsize=7, color="#404040",
           linespacing=1.35)
    return fig


__all__ = ["BLOCKS", "draw_network", "format_count", "trace_shapes"]
