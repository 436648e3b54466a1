"""The network diagram's layout: boxes, arrows and labels computed from the model, nothing drawn.

`layout_network(model)` reads what the picture shows from the network itself: the shapes from one
forward pass with `return_maps=True` on the meta device (no weights allocated, so even the
42.8 M-parameter paper preset takes a fraction of a second), the parameter counts from its modules,
the switched-off parts from the modules that are missing. It returns a `Layout` of plain dataclasses
in units of 0.1 inch (x 0..130, y 0..55), which `diagram.draw_network` paints. The layout follows
the data, FPN-style: the backbone goes up (bottom-up), the decoder comes down (top-down):

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
    input -> stem          side mask i, side boundary i ............> joint loss <-'
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ..model.banet import BANet
from ..model.config import ABLATIONS
from ..model.registry import count_parameters

Shape = tuple[int, int, int]  # (C, h, w)


def format_count(n: int) -> str:
    """A parameter count as the diagram prints it: 950, 17.8 k, 2.36 M."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1e3:.1f} k"
    return f"{n / 1e6:.2f} M"


def fmt(shape: Shape) -> str:
    """(C, h, w) -> "C x hxw", as the boxes print it."""
    c, h, w = shape
    return f"{c} x {h}x{w}"


@dataclass
class Shapes:
    """Each tensor's (C, h, w), from one forward pass."""

    stem: Shape
    stages: list[Shape]  # x_1..x_4
    reduced: list[Shape]  # F'_1..F'_4 (PEE keeps the shape: P_i too)
    seg: list[Shape]  # S_1..S_4 (CFF keeps the shape: the decoder's inputs C_i too)
    aspp: Shape
    decoder: list[Shape]  # d4, d3, d2, d1
    head: Shape  # logits at stage 1's size
    logits: Shape  # logits at the input size


def _meta_twin(model: BANet) -> BANet:
    """`model` itself if its weights are on the meta device, else a copy there (no weights copied
    when the config rebuilds the same structure)."""
    if next(model.parameters()).is_meta:
        return model
    with torch.device("meta"):
        twin = BANet(model.config)
    # changed after building: copy the modules
    if count_parameters(twin) != count_parameters(model):
        twin = copy.deepcopy(model).to("meta")
    return twin


def network_shapes(model: BANet, img_size: int = 256) -> Shapes:
    """Run `model` (or its meta twin) once on a meta (1, C, img_size, img_size) tensor with
    return_maps."""
    net = _meta_twin(model)
    training = net.training
    # ASPP's image pooling gives one value per channel: BN refuses a batch of one in training
    net.eval()
    try:
        with torch.no_grad():
            out = net(torch.empty(1, net.config.in_channels, img_size, img_size, device="meta"),
                      return_maps=True)
    finally:
        net.train(training)

    def shapes(name: str) -> list[Shape]:
        return [tuple(t.shape[1:]) for t in out.maps[name]]

    stages, steps = shapes("stages"), shapes("decoder_steps")
    aspp_dim = net.aspp.project[0].out_channels if net.aspp is not None else 0
    return Shapes(stem=(net.backbone.conv1.out_channels, *stages[0][1:]), stages=stages,
                  reduced=shapes("reduced"), seg=shapes("seg_features"),
                  aspp=(aspp_dim, *stages[3][1:]), decoder=steps,
                  head=(out.logits.shape[1], *steps[-1][1:]), logits=tuple(out.logits.shape[1:]))


# --------------------------------------------------------------------------------------------------
# What the painter gets: boxes, arrows, labels. `groups` name the block a piece belongs to
# ("pee", ...); the first gives its colour, any of them lights it up under a highlight. Arrow
# styles: "feature" (dark), "off" (grey), "loss" (the side outputs' dashes), "cff" (CFF's colour).
# --------------------------------------------------------------------------------------------------


@dataclass
class Box:
    x0: float
    x1: float
    yc: float
    h: float
    text: str
    groups: tuple[str, ...]
    off: bool = False
    fontsize: float = 7.5
    gid: str | None = None  # the patch's gid (default: its first group), so tests can find it


@dataclass
class Arrow:
    points: list[tuple[float, float]]
    style: str = "feature"
    dashed: bool = False
    head: bool = True
    both: bool = False  # heads at both ends
    halo: bool = False  # a white rim: a crossing, not a junction
    lw: float = 0.9


@dataclass
class Label:
    x: float
    y: float
    text: str
    groups: tuple[str, ...] = ()  # coloured as these blocks' text; () for plain notes
    off: bool = False
    colour: str | None = None  # a fixed colour instead
    line: str | None = None  # coloured as an arrow of this style instead
    fontsize: float = 7
    ha: str = "center"
    bold: bool = False
    linespacing: float | None = None  # None: matplotlib's default


@dataclass
class Layout:
    title: str
    boxes: list[Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


ROW_Y = [12.5, 20.5, 28.5, 36.5]  # stage 1 (bottom) .. stage 4 (top): the backbone goes up
ROW_H = 6.4
COLS = {  # column -> (x0, x1)
    "backbone": (1, 19), "reduce": (22, 32), "pee": (35, 45), "mtl": (48, 60), "side": (62.5, 70.5),
    "cff": (75.5, 84.5), "decoder": (87.5, 99.5), "aspp": (103.5, 115.5), "head": (102.5, 113.5),
    "logits": (116.5, 129),
}
BUS_X, BUS_Y = 72.5, 3.0  # the dashed line that takes the side outputs to the loss
BOTTOM_Y, BOTTOM_H = 4.3, 6.6  # the input, stem and loss row


def cx(column: str) -> float:
    return sum(COLS[column]) / 2


def top(i: int) -> float:
    return ROW_Y[i] + ROW_H / 2


def bottom(i: int) -> float:
    return ROW_Y[i] - ROW_H / 2


def _stage_blocks(layer: nn.Sequential) -> tuple[int, int, list[int]]:
    """(blocks, stride, dilations) of a backbone stage, read from its 3x3 convs."""
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    return (len(layer), max(c.stride[0] for c in convs),
            list(dict.fromkeys(c.dilation[0] for c in convs)))


def _count(module: nn.Module | None) -> str:
    return format_count(count_parameters(module) if module is not None else 0)


def _headers(net: BANet, lay: Layout) -> None:
    """Each column's name and its module's total, above the rows."""
    cfg, heads = net.config, net.mtl[0].seg_head is not None
    side = sum(count_parameters(m) for mtl in net.mtl for m in (mtl.seg_head, mtl.boundary_head)
               if m is not None)
    pee_on, ia_on, cff_off = net.pee[0].enabled, net.mtl[0].ia is not None, net.cff is None
    headers = [  # (column, name, parameters, groups, switched off)
        ("backbone", f"backbone: ResNet-{net.backbone.depth}, OS {cfg.output_stride}",
         _count(net.backbone), ("backbone",), False),
        ("reduce", "reduce x4", _count(net.reduce), ("reduce",), False),
        ("pee", "PEE x4" + ("" if pee_on else " (off)"), _count(net.pee), ("pee",), not pee_on),
        ("mtl", "mini-MTL + IA x4" if ia_on else "mini-MTL x4 (IA off)", _count(net.mtl), ("mtl",),
         False),
        ("side", "side heads (in MTL)" if heads else "side heads (off)", format_count(side),
         ("mtl", "loss"), not heads),
        ("cff", "CFF" + (" (off)" if cff_off else ""), _count(net.cff), ("cff",), cff_off),
        ("decoder", "decoder (top-down)", _count(net.decoder), ("decoder",), False),
    ]
    for column, name, n, groups, off in headers:
        x, ha = (COLS[column][0], "left") if column == "backbone" else (cx(column), "center")
        lay.labels.append(Label(x, 42.3, f"{name}\n{n}", groups, off, ha=ha, bold=True))


def _input_and_stem(net: BANet, s: Shapes, img_size: int, lay: Layout) -> None:
    bb = net.backbone
    lay.boxes.append(Box(0.5, 6.5, BOTTOM_Y, BOTTOM_H,
                         f"input\n{net.config.in_channels} x\n{img_size}x{img_size}", ("input",)))
    stem = count_parameters(bb) - sum(count_parameters(getattr(bb, f"layer{i}"))
                                      for i in (1, 2, 3, 4))
    k, stride, pool = bb.conv1.kernel_size[0], bb.conv1.stride[0], bb.maxpool.stride
    lay.boxes.append(Box(8, 19, BOTTOM_Y, BOTTOM_H,
                         f"stem {k}x{k} /{stride},\nmax-pool /{pool}\n{fmt(s.stem)}\n"
                         f"{format_count(stem)}", ("backbone",), fontsize=6.5))
    lay.arrows += [Arrow([(6.5, BOTTOM_Y), (8, BOTTOM_Y)]),
                   Arrow([(13.5, BOTTOM_Y + BOTTOM_H / 2), (13.5, bottom(0))])]


def _stage_row(net: BANet, s: Shapes, i: int, lay: Layout) -> None:
    """Stage i from the backbone to the decoder's input: layer, reduce, PEE, mini-MTL, side
    outputs."""
    y, col = ROW_Y[i], COLS
    layer = getattr(net.backbone, f"layer{i + 1}")
    blocks, stride, dilations = _stage_blocks(layer)
    name = f"layer {i + 1}: {blocks} blocks" + (f", /{stride}" if stride > 1 else "")
    name += ", dil " + ",".join(map(str, dilations)) if max(dilations) > 1 else ""
    conv, pee, mtl = net.reduce[i], net.pee[i], net.mtl[i]
    pee_name = f"PEE {pee.kernels}" if pee.enabled else "PEE off\n(1x1 + DW on F')"
    mtl_name = "mini-MTL + IA\ne \u21c4 s" if mtl.ia is not None else "mini-MTL, IA off\ne | s"
    lay.boxes += [
        Box(*col["backbone"], y, ROW_H, f"{name}\n{fmt(s.stages[i])}\n{_count(layer)}",
            ("backbone",)),
        Box(*col["reduce"], y, ROW_H,
            f"1x1 {conv.in_channels}\u2192{conv.out_channels}\n{fmt(s.reduced[i])}\n"
            f"{_count(conv)}", ("reduce",)),
        Box(*col["pee"], y, ROW_H, f"{pee_name}\n{fmt(s.reduced[i])}\n{_count(pee)}", ("pee",),
            off=not pee.enabled, fontsize=7.5 if pee.enabled else 6.8),
        Box(*col["mtl"], y, ROW_H, f"{mtl_name}\n{fmt(s.seg[i])}\n{_count(mtl)}", ("mtl",)),
    ]
    if i < 3:
        lay.arrows.append(Arrow([(7, top(i)), (7, bottom(i + 1))]))
    for a, b in (("backbone", "reduce"), ("reduce", "pee"), ("pee", "mtl")):
        lay.arrows.append(Arrow([(col[a][1], y), (col[b][0], y)]))
    side_on = mtl.seg_head is not None
    # side mask i (upper), side boundary i (middle)
    for dy, kind in ((1.9, "mask"), (-0.1, "boundary")):
        ty = y + dy
        label = f"side {kind} {i + 1}" if side_on else f"side {kind} off"
        lay.boxes.append(Box(*col["side"], ty, 1.7, label, ("mtl", "loss"), off=not side_on,
                             fontsize=6, gid="side"))
        lay.arrows += [Arrow([(col["mtl"][1], ty), (col["side"][0], ty)],
                             "feature" if side_on else "off", dashed=not side_on),
                       Arrow([(col["side"][1], ty), (BUS_X, ty)], "loss" if side_on else "off",
                             dashed=True, head=False)]
    # S_i -> CFF
    lay.arrows += [Arrow([(col["mtl"][1], y - 2.2), (col["cff"][0], y - 2.2)], halo=True),
                   Arrow([(col["cff"][1], y - 2.2), (col["decoder"][0], y - 2.2)])]  # CFF_i -> d_i


def _side_bus(net: BANet, img_size: int, lay: Layout) -> None:
    """The side outputs' line: down the column, along the bottom, into the loss."""
    heads = net.mtl[0].seg_head is not None
    style = "loss" if heads else "off"
    lay.arrows.append(Arrow([(BUS_X, ROW_Y[3] + 1.9), (BUS_X, BUS_Y), (COLS["head"][0], BUS_Y)],
                            style, dashed=True, lw=1.0))
    text = (f"4 side masks + 4 side boundaries, upsampled to {img_size}x{img_size}" if heads
            else "deep supervision off: no side outputs")
    lay.labels.append(Label((BUS_X + COLS["head"][0]) / 2, BUS_Y + 1.1, text, line=style,
                            fontsize=6.2))


def _cff(net: BANet, lay: Layout) -> None:
    """One box over the four stages, every stage feeding every other."""
    off = net.cff is None
    lay.boxes.append(Box(*COLS["cff"], (top(3) + bottom(0)) / 2, top(3) - bottom(0), "", ("cff",),
                         off=off))
    for i in range(4):
        y = ROW_Y[i]
        label = f"S{i + 1} passes\n(CFF off)" if off else f"CFF {i + 1}\n{_count(net.cff[i])}"
        lay.labels.append(Label(cx("cff"), y + 0.9, label, ("cff",), off, fontsize=6.5))
        if i < 3 and not off:
            lay.arrows.append(Arrow([(cx("cff"), y + 2.6), (cx("cff"), ROW_Y[i + 1] - 0.6)], "cff",
                                    both=True))


def _aspp(net: BANet, s: Shapes, lay: Layout) -> None:
    """ASPP on x4, top right; x4 runs along the top to it."""
    off, y = net.aspp is None, ROW_Y[3]
    lay.arrows.append(Arrow([(17.5, top(3)), (17.5, 46.5), (cx("aspp"), 46.5),
                             (cx("aspp"), y + ROW_H / 2)],
                            "off" if off else "feature", dashed=off))
    lay.labels.append(Label((cx("mtl") + cx("side")) / 2, 47.6,
                            f"x4: {fmt(s.stages[3])} (layer 4 output)",
                            colour="#9a9a9a" if off else "#404040", fontsize=6.5))
    if off:
        text = "ASPP off\n(d4 = " + ("S4)" if net.cff is None else "C4)")
    else:
        rates = tuple(branch[0].dilation[0] for branch in net.aspp.branches[1:])  # the 3x3 branches
        text = f"ASPP {rates}\n{fmt(s.aspp)}\n{_count(net.aspp)}"
        lay.arrows.append(Arrow([(COLS["aspp"][0], y), (COLS["decoder"][1], y)]))
    lay.boxes.append(Box(*COLS["aspp"], y, ROW_H, text, ("aspp",), off=off))


def _decoder_and_loss(net: BANet, s: Shapes, lay: Layout) -> None:
    """d4 at the top down to d1, then the head, the logits and the joint loss."""
    dec, col = net.decoder, COLS
    steps = [dec.top] + list(dec.up)
    # what the decoder fuses: CFF's outputs C_i, else the S_i themselves
    c = "S" if net.cff is None else "C"
    for k, i in enumerate((3, 2, 1, 0)):  # d4, d3, d2, d1
        if i == 3:
            name = f"d4 = Up[{c}4, ASPP]" if dec.top is not None else f"d4 = {c}4"
        else:
            name = f"d{i + 1} = Up[{c}{i + 1}, d{i + 2}]"
        lay.boxes.append(Box(*col["decoder"], ROW_Y[i], ROW_H,
                             f"{name}\n{fmt(s.decoder[k])}\n{_count(steps[k])}", ("decoder",)))
        if i > 0:
            lay.arrows.append(Arrow([(cx("decoder") + 3, bottom(i)),
                                     (cx("decoder") + 3, top(i - 1))]))
    y1 = ROW_Y[0]
    up = s.logits[1] / s.head[1]
    heads = net.mtl[0].seg_head is not None
    loss = ["joint loss", "main: CE + Dice(logits, mask)"]
    loss += (["+ side seg: CE(side mask i, mask)", "+ side boundary: CE(side boundary i, boundary)"]
             if heads else ["(side terms off)"])
    lay.boxes += [
        Box(*col["head"], y1, ROW_H, f"head\n3x3, 1x1 \u2192 K\n{fmt(s.head)}\n{_count(dec.head)}",
            ("decoder",), fontsize=6.5),
        Box(*col["logits"], y1, ROW_H, f"logits\n{fmt(s.logits)}\n(bilinear up x{up:g})",
            ("decoder",), fontsize=6.5),
        Box(col["head"][0], col["logits"][1], BOTTOM_Y, BOTTOM_H, "\n".join(loss), ("loss",),
            fontsize=6.5),
    ]
    lay.arrows += [Arrow([(col["decoder"][1], y1 + 1.2), (col["head"][0], y1 + 1.2)]),
                   Arrow([(col["head"][1], y1 + 1.2), (col["logits"][0], y1 + 1.2)]),
                   Arrow([(cx("logits"), bottom(0)), (cx("logits"), BOTTOM_Y + BOTTOM_H / 2)])]


def layout_network(net: BANet, img_size: int = 256) -> Layout:
    """Boxes, arrows and labels of BA-Net's block diagram, read from `net`, for an img_size
    input."""
    cfg, s = net.config, network_shapes(net, img_size)
    off = [label for switch, label in ABLATIONS.items() if not getattr(cfg, switch)]
    variant = f"{cfg.preset} preset" + (f", {', '.join(off)} off" if off else "")
    lay = Layout(f"BA-Net ({variant}): {format_count(count_parameters(net))} parameters")
    _headers(net, lay)
    _input_and_stem(net, s, img_size, lay)
    for i in range(4):
        _stage_row(net, s, i, lay)
    _side_bus(net, img_size, lay)
    _cff(net, lay)
    _aspp(net, s, lay)
    _decoder_and_loss(net, s, lay)
    notes = [f"shapes: C x H x W for a {img_size}x{img_size} input",
             f"R = {cfg.reduce_dim} channels per stage, K = {cfg.num_classes} classes",
             f"PEE border rule: {cfg.border_rule}", "numbers under each shape: parameters",
             "solid arrows: features; dashed: to the loss"]
    lay.labels.append(Label(COLS["head"][0], 24.5, "\n".join(notes), colour="#404040", ha="left",
                            linespacing=1.35))
    return lay
