"""The per-notebook explorers (PEE, IA, CFF, decoder): their pictures are the model's own tensors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import banet_lite as bl
from banet_lite.model.layers import resize_to
from banet_lite.model.pee import pyramid_edges
from banet_lite.teaching.viz import CFFExplorer, DecoderExplorer, IAExplorer, PEEExplorer, region_profile


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
        torch.testing.assert_close(m["seg_branch"][i] + m["ia_boundary_to_seg"][i] * m["boundary_branch"][i],
                                   m["seg_features"][i])
    ex = IAExplorer(model, images, masks)
    a = ex.figure(direction="boundary -> seg")
    b = ex.figure(direction="seg -> boundary", stage=3)
    assert "boundary -> seg" in a._suptitle.get_text() and "stage 3" in b._suptitle.get_text()
    with pytest.raises(ValueError, match="ia_boundary_to_seg"):
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


def test_region_profile_tells_an_outline_from_a_lesion_mask_and_an_inverted_one():
    mask = torch.zeros(64, 64)
    mask[16:48, 16:48] = 1  # a 32 px square: interior cells at every resolution down to 8 x 8
    band = bl.boundary_target(mask[None, None])[0, 0]
    at = {n: F.adaptive_avg_pool2d(band[None, None], n)[0, 0].numpy() for n in (64, 16)}
    for n, outline in at.items():
        profile = region_profile(outline, mask)
        assert profile.kind() == "boundary-specific" and profile.contrast() > 2, (n, str(profile))
        assert profile.size == (n, n) and profile.cells["outline"] > 0 and profile.cells["interior"] > 0
    lesion = F.adaptive_avg_pool2d(mask[None, None], 16)[0, 0].numpy()
    assert region_profile(lesion, mask).kind() == "a soft lesion mask"  # high on the whole lesion
    assert region_profile(1 - lesion, mask).kind() == "an inverted lesion mask"
    assert region_profile(np.ones((16, 16)), mask).kind() == "flat"
    framed = np.ones((16, 16))
    framed[[0, -1], :] = framed[:, [0, -1]] = 3.0  # zero padding's frame: kept apart, and named
    assert region_profile(framed, mask).read() == "flat: no region stands out by 1.25x; strongest along the image frame"
    small = torch.zeros(64, 64)
    small[28:36, 28:36] = 1  # 8 px: no 8 x 8 map cell lies wholly inside
    assert region_profile(np.ones((8, 8)), small).kind() == "too coarse"
    # pooled over images: cell-weighted, the same as one profile of both
    two = region_profile([lesion, lesion], [mask, mask])
    assert two.cells["interior"] == 2 * region_profile(lesion, mask).cells["interior"]
    assert two["interior"] == pytest.approx(region_profile(lesion, mask)["interior"])


def test_profile_measures_the_headline_panel_of_the_view(setup):
    model, images, masks = setup
    from banet_lite.teaching.explorer import reduce_channels

    pee = PEEExplorer(model, images, masks)
    _, e = pee.edge_response(1, 3, 7, "exclude_padding")
    view = {"image": 1, "stage": 3, "window": 7, "border_rule": "exclude_padding", "channel": "max"}
    same = pytest.approx(region_profile(reduce_channels(e, "max"), masks[1, 0]).means, nan_ok=True)
    assert pee.profile(**view).means == same
    ia = IAExplorer(model, images, masks)
    borrowed = ia.panels(ia.values(image=0, stage=2))[ia.headline_panel]
    assert borrowed[0].startswith("borrowed")
    assert ia.profile(image=0, stage=2).means == pytest.approx(region_profile(borrowed[1], masks[0, 0]).means,
                                                               nan_ok=True)
    both = ia.profile(images=[0, 1], stage=2)
    assert both.cells["outline"] == sum(ia.profile(image=i, stage=2).cells["outline"] for i in (0, 1))
    dec = DecoderExplorer(model, images, masks)
    side = dec.panels(dec.values(step="side 2"))[dec.headline_panel]
    assert side[0] == "side boundary 2"
