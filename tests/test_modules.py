"""Each BA-Net module against its equation, on known tensors."""

import torch
import torch.nn.functional as F

import banet_lite as bl
from banet_lite.model.layers import resize_to
from banet_lite.model.pee import pyramid_edges


def test_pee_has_zero_pyramid_response_on_a_constant_map_including_borders():
    f = torch.full((1, 4, 20, 17), 3.7)
    for e in pyramid_edges(f, (5, 7)):
        assert e.abs().max() < 1e-5  # zero up to float rounding
    pee = bl.PyramidEdgeExtraction(4, (5, 7))
    _, edges = pee(f)
    assert edges.shape == (1, 8, 20, 17) and edges.abs().max() < 1e-5


def test_border_rule_decides_whether_a_constant_map_has_a_frame_edge():
    """exclude_padding: zero response everywhere; zero_padding (the reference's nn.AvgPool2d): a frame
    response exactly where the window sticks out of the image, zero in the interior."""
    f = torch.full((1, 2, 16, 16), 2.0)
    for k in (3, 5, 7):
        assert pyramid_edges(f, (k,), "exclude_padding")[0].abs().max() < 1e-6
        e = pyramid_edges(f, (k,), "zero_padding")[0][0, 0]  # (16, 16)
        r = k // 2  # the band the window reaches out of the image from
        interior = e[r:-r, r:-r]
        assert interior.abs().max() < 1e-6
        frame = torch.ones_like(e, dtype=torch.bool)
        frame[r:-r, r:-r] = False
        assert (e[frame] > 0.1).all()  # F - (fewer than k^2 values of 2)/k^2 > 0 on the whole frame band
        # the corner sees the fewest pixels: 2 - 2 (r + 1)^2 / k^2
        torch.testing.assert_close(e[0, 0], torch.tensor(2 - 2 * (r + 1) ** 2 / k**2))
    # the module follows its border rule; the paper preset takes the reference's, the others not
    reference = torch.nn.AvgPool2d(5, stride=1, padding=2)  # the reference code's pooling, defaults kept
    torch.testing.assert_close(pyramid_edges(f, (5,), "zero_padding")[0], f - reference(f))
    assert bl.make_config("paper").border_rule == "zero_padding"
    assert bl.make_config("lite").border_rule == bl.make_config("tiny").border_rule == "exclude_padding"
    assert bl.build_model("paper").pee[0].border_rule == "zero_padding"


def test_pee_edge_is_feature_minus_local_average_and_peaks_at_a_step():
    f = torch.zeros(1, 1, 16, 16)
    f[..., :, 8:] = 1.0  # a vertical step edge
    e3 = pyramid_edges(f, (3,))[0]
    # by hand: column 8 (first 1) has mean of columns 7..9 = 2/3 -> 1 - 2/3; column 7 -> 0 - 1/3
    torch.testing.assert_close(e3[0, 0, 5, 8], torch.tensor(1 / 3))
    torch.testing.assert_close(e3[0, 0, 5, 7], torch.tensor(-1 / 3))
    assert e3[0, 0, 5, :6].abs().max() == 0 and e3[0, 0, 5, 10:].abs().max() == 0


def test_pee_fusion_sees_feature_and_both_edge_maps():
    torch.manual_seed(0)
    pee = bl.PyramidEdgeExtraction(4, (3, 5)).eval()
    f = torch.randn(2, 4, 12, 12)
    fused, edges = pee(f)
    expected_in = torch.cat([f, f - F.avg_pool2d(f, 3, 1, 1, count_include_pad=False),
                             f - F.avg_pool2d(f, 5, 1, 2, count_include_pad=False)], 1)
    torch.testing.assert_close(fused, pee.fuse(pee.squeeze(expected_in)))
    torch.testing.assert_close(edges, expected_in[:, 4:])


def test_interactive_attention_paper_form_equals_its_formula():
    e = torch.tensor([[[[-2.0, 0.0], [1.0, 3.0]]]])
    s = torch.tensor([[[[0.5, -1.0], [2.0, 0.0]]]])
    ia = bl.InteractiveAttention(1, attention_blocks=False)
    E, S, g_se, g_es = ia(e, s)
    sig = lambda t: 1 / (1 + torch.exp(-t))  # noqa: E731
    torch.testing.assert_close(E, e + (1 - sig(e)) * s)
    torch.testing.assert_close(S, s + (1 - sig(s)) * e)
    # one value by hand: e = 0 -> gate 0.5 -> E = 0 + 0.5 * (-1)
    assert abs(E[0, 0, 0, 1].item() - (-0.5)) < 1e-6
    assert sum(p.numel() for p in ia.parameters()) == 0


def test_interactive_attention_reference_form_uses_its_attention_blocks():
    torch.manual_seed(0)
    ia = bl.InteractiveAttention(3).eval()
    e, s = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    E, S, g_se, g_es = ia(e, s)
    torch.testing.assert_close(E, e + (1 - torch.sigmoid(ia.attend_boundary(e))) * s)
    torch.testing.assert_close(S, s + (1 - torch.sigmoid(ia.attend_seg(s))) * e)
    torch.testing.assert_close(g_se, 1 - torch.sigmoid(ia.attend_boundary(e)))


def test_mini_mtl_without_ia_keeps_branches_independent():
    torch.manual_seed(0)
    mtl = bl.MiniMTL(4, 2, use_ia=False).eval()
    x = torch.randn(1, 4, 8, 8)
    out = mtl(x)
    torch.testing.assert_close(out["seg_features"], mtl.seg_branch(x))
    torch.testing.assert_close(out["side_boundary"], mtl.boundary_head(mtl.boundary_branch(x)))


def test_cross_feature_fusion_equals_its_formula():
    torch.manual_seed(0)
    feats = [torch.randn(1, 3, 16, 16)] + [torch.randn(1, 3, 8, 8) for _ in range(3)]
    for i in range(4):
        cff = bl.CrossFeatureFusion(3, stage=i)
        out, gate = cff(feats)
        W = cff.convs
        received = sum(torch.sigmoid(W[j](resize_to(feats[j], feats[i]))) * resize_to(feats[j], feats[i])
                       for j in range(4) if j != i)
        expected = feats[i] + (1 - torch.sigmoid(W[i](feats[i]))) * received
        torch.testing.assert_close(out, expected)
        assert out.shape == feats[i].shape and gate.shape == feats[i].shape


def test_aspp_branches_and_image_pooling():
    torch.manual_seed(0)
    aspp = bl.ASPP(8, 4, rates=(1, 2)).eval()
    x = torch.randn(2, 8, 9, 7)
    y = aspp(x)
    assert y.shape == (2, 4, 9, 7)
    pooled = aspp.image_pool(x)
    views = [b(x) for b in aspp.branches] + [pooled.expand(-1, -1, 9, 7)]
    torch.testing.assert_close(y, aspp.project(torch.cat(views, 1)))
    # the image-pooling branch sees the whole image: a change far away changes every output pixel
    x2 = x.clone()
    x2[..., 0, 0] += 10
    assert (aspp.image_pool(x2) - pooled).abs().sum() > 0


def test_decoder_returns_stage1_resolution():
    dec = bl.Decoder(4, 2, aspp_dim=6).eval()
    fused = [torch.randn(1, 4, 16, 16)] + [torch.randn(1, 4, 8, 8) for _ in range(3)]
    assert dec(fused, torch.randn(1, 6, 8, 8)).shape == (1, 2, 16, 16)


def test_cff_given_stages_resized_once_matches_resizing_inside_each_module():
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, 16, 16), torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8)]
    resized = bl.cff.resize_for_fusion(feats)
    assert resized[1][0] is resized[2][0] is resized[3][0]  # stage 1 resized to the 8x8 size once, shared
    for i in range(4):
        cff = bl.CrossFeatureFusion(8, i)
        for a, b in zip(cff(feats), cff(feats, resized[i])):
            assert torch.equal(a, b)  # bit for bit


def test_cff_paper_form_has_no_parameters_and_gates_on_the_features_themselves():
    feats = [torch.randn(1, 3, 8, 8), torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)]
    cff = bl.CrossFeatureFusion(3, stage=1, gate_convs=False)
    assert sum(p.numel() for p in cff.parameters()) == 0
    resized = [resize_to(f, feats[1]) for f in feats]
    expected = feats[1] + (1 - torch.sigmoid(feats[1])) * sum(
        torch.sigmoid(resized[j]) * resized[j] for j in (0, 2, 3))
    torch.testing.assert_close(cff(feats)[0], expected)
    full, paper = bl.build_model("paper"), bl.build_model("paper", cff_gate_convs=False)
    assert bl.count_parameters(full) - bl.count_parameters(paper) == 16 * 9 * 128 * 128  # 16 convs 3x3 R -> R
