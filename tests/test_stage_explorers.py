"""The per-notebook explorers (PEE, IA, CFF, decoder): their pictures are the model's own tensors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import banet_lite as bl
from banet_lite.model.layers import resize_to
from banet_lite.model.pee import pyramid_edges
from banet_lite.teaching.viz import CFFExplorer, DecoderExplorer, IAExplorer, PEEExplorer, band_ratio


@pytest.fixture(scope="module")
def setup():
    bl.seed_everything(0)
    model = bl.build_model("tiny").eval()
    ds = bl.data.SyntheticLesions(2, size=64, seed=7)
    images = torch.stack([ds[i][0] for i in range(2)])
    masks = torch.stack([ds[i][1] for i in range(2)])
    return model, images, masks


def test_pee_explorer_computes_the_models_own_edges_for_its_windows_and_rule(setup):
    model, images, masks = setup
    ex = PEEExplorer(model, images, masks)
    out = model(images[:1], return_maps=True)
    for stage in (1, 3):
        kernels = model.pee[stage - 1].kernels
        f = out.maps["reduced"][stage - 1]
        torch.testing.assert_close(torch.cat(pyramid_edges(f, kernels), 1), out.maps["pee_edge"][stage - 1])
        _, e = ex.edge_response(0, stage, kernels[1], "exclude_padding")
        torch.testing.assert_close(e, out.maps["pee_edge"][stage - 1][0, len(f[0]):].abs())
    # the other border rule differs only near the frame
    _, a = ex.edge_response(0, 2, 5, "exclude_padding")
    _, b = ex.edge_response(0, 2, 5, "zero_padding")
    torch.testing.assert_close(a[:, 2:-2, 2:-2], b[:, 2:-2, 2:-2])
    assert not torch.allclose(a, b)


def test_ia_explorer_borrowed_part_rebuilds_the_seg_features(setup):
    model, images, masks = setup
    out = model(images[1:], return_maps=True)
    m = out.maps
    for i in range(4):  # S = s + (1 - sig(A_s s)) * e, E likewise
        torch.testing.assert_close(m["seg_branch"][i] + m["ia_edge_to_seg"][i] * m["edge_branch"][i],
                                   m["seg_features"][i])
    ex = IAExplorer(model, images, masks)
    a = ex.figure(direction="edge -> seg")
    b = ex.figure(direction="seg -> edge", stage=3)
    assert "edge -> seg" in a._suptitle.get_text() and "stage 3" in b._suptitle.get_text()
    with pytest.raises(ValueError, match="ia_edge_to_seg"):
        IAExplorer(bl.build_model("tiny", use_ia=False), images, masks).control_options()


def test_cff_explorer_messages_add_up_to_the_models_fusion(setup):
    model, images, masks = setup
    ex = CFFExplorer(model, images, masks)
    out = model(images[:1], return_maps=True)
    feats = list(out.maps["seg_features"])
    for r in (1, 2, 4):
        sent, gate, added = ex.messages(0, r)
        assert sorted(sent) == [j for j in (1, 2, 3, 4) if j != r]
        torch.testing.assert_close(gate, out.maps["cff_gate"][r - 1][0])
        fused, _ = model.cff[r - 1](feats)
        torch.testing.assert_close(feats[r - 1][0] + added, fused[0])
    with pytest.raises(ValueError, match="use_cff=False"):
        CFFExplorer(bl.build_model("tiny", use_cff=False), images, masks)


def test_decoder_explorer_last_step_read_out_is_the_output(setup):
    model, images, masks = setup
    ex = DecoderExplorer(model, images, masks)
    assert ex.control_options()["step"] == ["side 1", "side 2", "side 3", "side 4", "d4", "d3", "d2", "d1"]
    out = model(images[:1], return_maps=True)
    d1 = out.maps["decoder_steps"][3]
    torch.testing.assert_close(resize_to(model.decoder.head(d1), images.shape[-2:]), out.logits)
    assert ex.static_view == {"step": "side 2"}
    plain = bl.build_model("tiny", deep_supervision=False)
    assert DecoderExplorer(plain, images, masks).control_options()["step"] == ["d4", "d3", "d2", "d1"]


def test_every_control_changes_the_picture_and_bad_values_are_named(setup):
    model, images, masks = setup
    ex = PEEExplorer(model, images, masks)
    assert ex.static_view == {"stage": 2, "window": 5, "border_rule": "exclude_padding"}
    base = ex.widget()
    assert "banet-pee-explorer" in base._dom_classes and repr(base).startswith("PEEExplorer widget")
    c = ex.controls
    seen = {c["view"].value}
    for name, value in (("window", 9), ("border_rule", "zero_padding"), ("stage", 1), ("channel", 3),
                        ("image", 1)):
        c[name].value = value
        assert c["view"].value not in seen, name
        seen.add(c["view"].value)
    assert "window 9" in c["caption"].value
    with pytest.raises(ValueError, match="window=4"):
        ex.figure(window=4)
    with pytest.raises(ValueError, match="unknown control"):
        ex.figure(stride=2)
    ex.view = {"stage": 4}
    assert ex.values()["stage"] == 4 and isinstance(ex.display(), Figure)


def test_band_ratio_is_high_on_the_outline_and_one_on_a_flat_map():
    mask = torch.zeros(32, 32)
    mask[8:24, 8:24] = 1
    band = bl.edge_target(mask[None, None])[0, 0].numpy()
    assert band_ratio(band * 5 + 1, mask) == pytest.approx(6.0)
    assert band_ratio(np.ones((8, 8)), mask) == pytest.approx(1.0)
    assert np.isnan(band_ratio(np.ones((8, 8)), torch.zeros(32, 32)))  # no outline: no ratio
    small = F.avg_pool2d(torch.from_numpy(band)[None, None], 4)[0, 0].numpy()  # at 1/4: still on the band
    assert band_ratio(small, mask) > 3


def test_band_rest_measures_the_headline_panel_of_the_view(setup):
    model, images, masks = setup
    from banet_lite.teaching.explorer import reduce_channels

    pee = PEEExplorer(model, images, masks)
    _, e = pee.edge_response(1, 3, 7, "exclude_padding")
    view = {"image": 1, "stage": 3, "window": 7, "border_rule": "exclude_padding", "channel": "max"}
    assert pee.band_rest(**view) == pytest.approx(band_ratio(reduce_channels(e, "max"), masks[1, 0]))
    ia = IAExplorer(model, images, masks)
    borrowed = ia.panels(ia.values(image=0, stage=2))[ia.headline_panel]
    assert borrowed[0].startswith("borrowed") and ia.band_rest(image=0, stage=2) == pytest.approx(
        band_ratio(borrowed[1], masks[0, 0]))
    dec = DecoderExplorer(model, images, masks)
    side = dec.panels(dec.values(step="side 2"))[dec.headline_panel]
    assert side[0] == "side boundary 2"
    # a map that is strongest on the outline band scores high, the same map turned inside out low
    band = bl.edge_target(masks[:1])[0, 0].numpy()
    assert band_ratio(band, masks[0, 0]) > 5 > 0.5 > band_ratio(1 - band, masks[0, 0])
