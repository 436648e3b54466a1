"""The network diagram: drawn from the model itself (names, shapes, parameter counts), quick even for the
42.8 M-parameter paper preset (built on the meta device), with highlights and switched-off modules shown."""


import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import banet_lite as bl  # noqa: E402
from banet_lite.teaching import diagram  # noqa: E402
from banet_lite.teaching.diagram import BLOCKS, COLOURS, OFF, STRONG, draw_network, format_count  # noqa: E402


def texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def faces(fig: Figure, gid: str) -> list[tuple]:
    """Face colours of the patches drawn for group `gid`."""
    patches = fig.findobj(lambda a: a.get_gid() == gid)
    assert patches, f"no patch with gid {gid!r}"
    return [tuple(p.get_facecolor()) for p in patches]


def meta_model(preset: str, **overrides):
    with torch.device("meta"):
        return bl.build_model(preset, **overrides)


def test_format_count():
    assert [format_count(n) for n in (950, 17_792, 267_776, 42_773_074)] == ["950", "17.8 k", "267.8 k", "42.77 M"]


@pytest.mark.parametrize("preset", ["tiny", "lite", "paper"])
def test_every_block_with_its_shape_and_parameter_count(preset):
    fig = draw_network(preset)
    model = meta_model(preset)
    text = texts(fig)
    assert fig.get_size_inches() == pytest.approx((13, 5.5))
    assert f"BA-Net ({preset} preset): {format_count(bl.count_parameters(model))} parameters" in text
    for name in ["input", "stem", "layer 1", "layer 4", "reduce", "PEE", "mini-MTL + IA", "side mask 1",
                 "side boundary 4", "CFF 1", "CFF 4", "ASPP", "d4 = Up[C4, ASPP]", "d1 = Up[C1, d2]", "head",
                 "logits", "joint loss"]:
        assert name in text, name
    # module totals in the column headers, per-stage counts in the boxes: read from the model
    assert f"PEE x4\n{format_count(bl.count_parameters(model.pee))}" in text
    assert f"CFF\n{format_count(bl.count_parameters(model.cff))}" in text
    assert f"PEE {model.pee[0].kernels}\n" in text and f"\n{format_count(bl.count_parameters(model.pee[3]))}" in text
    assert f"\n{format_count(bl.count_parameters(model.aspp))}" in text
    # shapes from the forward pass: stage 1 at 1/4 of the 256 px input, the logits at full size
    c1, c4 = model.backbone.channels[0], model.backbone.channels[3]
    assert f"{c1} x 64x64" in text and f"x4: {c4} x " in text
    assert f"{model.config.num_classes} x 256x256" in text


def test_paper_is_built_on_meta(monkeypatch):
    """42.8 M parameters are never allocated: the paper preset is built on the meta device."""
    built = []

    def spy(*args, **kwargs):
        built.append(bl.build_model(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(diagram, "build_model", spy)
    draw_network("paper")
    assert built[-1].config.preset == "paper" and all(p.is_meta for p in built[-1].parameters())


def test_a_built_model_is_drawn_as_it_is_and_left_untouched():
    model = bl.build_model("tiny").train()
    model.aspp = bl.ASPP(model.backbone.channels[3], model.config.aspp_dim, rates=(1, 3))  # not the config's
    text = texts(draw_network(model, img_size=64))
    assert "ASPP (1, 3)\n" in text and f"\n{format_count(bl.count_parameters(model.aspp))}" in text
    assert "2 x 64x64" in text  # the logits at the requested input size
    assert model.training and not any(p.is_meta for p in model.parameters())


def test_highlight_colours_its_blocks_and_mutes_the_rest():
    plain, pee = draw_network("tiny"), draw_network("tiny", highlight="pee")
    assert set(faces(plain, "pee")) == {to_rgba(COLOURS["pee"][0])}
    assert set(faces(pee, "pee")) == {to_rgba(STRONG["pee"])}
    assert set(faces(pee, "backbone")) == set(faces(pee, "decoder")) != set(faces(plain, "backbone"))
    assert "this notebook: " + BLOCKS["pee"] in texts(pee)
    both = draw_network("tiny", highlight=["mtl", "loss"])
    assert set(faces(both, "loss")) == {to_rgba(STRONG["loss"])} and set(faces(both, "mtl")) == {to_rgba(STRONG["mtl"])}
    assert set(faces(both, "pee")) == set(faces(pee, "backbone"))  # muted
    assert BLOCKS["mtl"] in texts(both) and BLOCKS["loss"] in texts(both)


def test_switched_off_modules_are_grey_and_labelled_off():
    fig = draw_network(bl.build_model("tiny", use_cff=False, use_aspp=False))
    text = texts(fig)
    assert "CFF, ASPP off" in text and "CFF (off)" in text and "ASPP off" in text and "CFF 1\n" not in text
    assert "d4 = S4" in text  # no ASPP, no CFF: the decoder starts from S_4 itself
    assert set(faces(fig, "cff")) == set(faces(fig, "aspp")) == {to_rgba(OFF[0])}
    assert {p.get_linestyle() for p in fig.findobj(lambda a: a.get_gid() in ("cff", "aspp"))} == {"--"}
    assert set(faces(fig, "pee")) == {to_rgba(COLOURS["pee"][0])}  # still on
    text = texts(draw_network(meta_model("tiny", use_pee=False, use_ia=False, deep_supervision=False)))
    assert "PEE off" in text and "IA off" in text and "side mask off" in text and "side mask 1" not in text


@pytest.mark.parametrize("bad", ["nose", ["pee", "ia"]])
def test_an_unknown_highlight_names_itself_and_the_valid_ones(bad):
    with pytest.raises(ValueError, match=r"'(nose|ia)'.*'backbone', 'pee', 'mtl'"):
        draw_network("tiny", highlight=bad)


def test_only_ba_net_is_drawn():
    with pytest.raises(ValueError, match="U-Net baseline"):
        draw_network("unet")


def test_the_layout_is_computed_without_drawing_and_fits_the_canvas():
    """layout_network returns plain boxes, arrows and labels: every piece inside the 130 x 55 canvas, the
    stage boxes of one row side by side without overlapping, and the shapes the network's maps report."""
    from banet_lite.teaching.diagram_layout import layout_network, network_shapes

    net = meta_model("tiny")
    lay = layout_network(net, img_size=96)
    assert lay.title == f"BA-Net (tiny preset): {format_count(bl.count_parameters(net))} parameters"
    for b in lay.boxes:
        assert 0 <= b.x0 < b.x1 <= 130 and 0 <= b.yc - b.h / 2 and b.yc + b.h / 2 <= 55, b
    for a in lay.arrows:
        assert all(0 <= x <= 130 and 0 <= y <= 55 for x, y in a.points), a
    rows = {}
    for b in lay.boxes:
        if b.gid is None and b.h < 7 and b.text:  # the per-stage boxes (not CFF's frame, not the side outputs)
            rows.setdefault(b.yc, []).append((b.x0, b.x1))
    for spans in rows.values():
        spans.sort()
        assert all(a1 <= b0 for (_, a1), (b0, _) in zip(spans, spans[1:])), spans
    s = network_shapes(net, 96)
    assert s.stages[0] == (net.backbone.channels[0], 24, 24) and s.logits == (2, 96, 96)
    assert [d[1] for d in s.decoder] == [12, 12, 12, 24]  # d4, d3, d2 at stride 8, d1 at stride 4
    assert sum(b.groups == ("pee",) for b in lay.boxes) == 4
