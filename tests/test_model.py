"""The assembled BA-Net: exact parameter parity, gradients everywhere, any input size, ablations."""

import copy

import pytest
import torch

import banet_lite as bl


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (dict(num_classes=2), 42_773_074),
        (dict(num_classes=1), 42_763_721),
        (dict(num_classes=2, use_aspp=False), 27_184_594),
    ],
)
def test_paper_preset_matches_reference_parameter_count(overrides, expected):
    model = bl.build_model("paper", **overrides)
    assert bl.count_parameters(model) == expected
    assert bl.count_parameters(model.backbone) == 23_508_032
    if model.aspp is not None:
        assert bl.count_parameters(model.aspp) == 15_535_104


@pytest.mark.parametrize("preset, size", [("tiny", 64), ("lite", 64), ("paper", 64), ("unet", 64)])
def test_every_parameter_gets_a_finite_gradient(preset, size):
    torch.manual_seed(0)
    model = bl.build_model(preset, num_classes=2)
    x = torch.randn(2, 3, size, size)
    mask = torch.zeros(2, 1, size, size)
    mask[:, :, 16:40, 20:44] = 1
    total, _ = bl.JointLoss()(model(x), mask)
    total.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters outside the forward pass: {no_grad[:5]}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad
    # every parameter takes part: the gradient of a random loss is nonzero somewhere for each
    zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, f"parameters with an all-zero gradient: {zero[:5]}"


@pytest.mark.parametrize("preset", ["tiny", "unet"])
@pytest.mark.parametrize("num_classes", [1, 2])
def test_any_input_size_gives_outputs_of_that_size(preset, num_classes):
    model = bl.build_model(preset, num_classes=num_classes).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 250, 190))
    assert out.logits.shape == (1, num_classes, 250, 190)
    for t in (*out.side_masks, *out.side_boundaries):
        assert t.shape == (1, num_classes, 250, 190)
    if preset == "tiny":
        assert len(out.side_masks) == len(out.side_boundaries) == 4


def test_lite_at_odd_size_and_output_stride_16():
    model = bl.build_model("lite").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 97, 131))
    assert out.logits.shape == (1, 2, 97, 131)


def test_return_maps_gives_every_map_per_stage_in_range():
    cfg = bl.make_config("tiny")
    model = bl.build_model("tiny").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 96, 96), return_maps=True)
    gates = {"ia_seg_to_boundary", "ia_boundary_to_seg", "cff_gate"}
    assert set(out.maps) == gates | {"stages", "reduced", "pee_edge", "boundary_branch", "seg_branch", "seg_features",
                                     "boundary_features", "ia_borrowed_by_seg", "ia_borrowed_by_boundary", "cff_sent",
                                     "cff_added", "decoder_steps"}
    for i in range(4):  # what the explorers show is what the modules computed
        torch.testing.assert_close(out.maps["seg_features"][i],
                                   out.maps["seg_branch"][i] + out.maps["ia_borrowed_by_seg"][i], rtol=0, atol=0)
        assert out.maps["cff_sent"][i].shape == (1, 3, cfg.reduce_dim, *out.maps["cff_gate"][i].shape[-2:])
        torch.testing.assert_close(out.maps["cff_added"][i],
                                   out.maps["cff_gate"][i] * out.maps["cff_sent"][i].sum(1), rtol=1e-6, atol=1e-6)
    assert [tuple(m.shape) for m in out.maps["stages"]] == [(1, c, s, s) for c, s in
                                                            zip(model.backbone.channels, (24, 12, 12, 12))]
    R = cfg.reduce_dim
    for name, maps in ((k, v) for k, v in out.maps.items() if k not in ("stages", "cff_sent")):
        assert len(maps) == 4
        for i, m in enumerate(maps):
            side = 24 if i == 0 else 12  # stage 1 at 1/4, the others at 1/8 (output stride 8)
            if name == "decoder_steps":  # d4, d3, d2 at 1/8, d1 at stage 1's size
                side = 24 if i == 3 else 12
            assert m.shape == (1, 2 * R if name == "pee_edge" else R, side, side)
            if name in gates:
                assert 0 <= m.min() and m.max() <= 1
    assert model(torch.randn(1, 3, 64, 64)).maps is None


@pytest.mark.parametrize("switch", ["use_pee", "use_ia", "use_cff", "use_aspp", "deep_supervision"])
def test_each_ablation_switch_builds_a_working_smaller_model(switch):
    full = bl.build_model("tiny")
    ablated = bl.build_model("tiny", **{switch: False})
    assert bl.count_parameters(ablated) < bl.count_parameters(full)
    out = ablated(torch.randn(2, 3, 64, 64), return_maps=True)
    assert out.logits.shape == (2, 2, 64, 64)
    n_side = 0 if switch == "deep_supervision" else 4
    assert len(out.side_masks) == len(out.side_boundaries) == n_side
    missing = {"use_pee": {"pee_edge"}, "use_ia": {"ia_seg_to_boundary", "ia_boundary_to_seg"},
               "use_cff": {"cff_gate"}}.get(switch, set())
    assert not (missing & set(out.maps))
    total, parts = bl.JointLoss()(out, torch.ones(2, 1, 64, 64))
    total.backward()
    assert [n for n, p in ablated.named_parameters() if p.grad is None] == []


def test_unknown_preset_and_field_are_named_in_the_error():
    with pytest.raises(ValueError, match="preset='huge'"):
        bl.build_model("huge")
    with pytest.raises(ValueError, match="use_peee"):
        bl.build_model("tiny", use_peee=False)


def test_config_round_trips_through_plain_dict():
    cfg = bl.make_config("lite", num_classes=1)
    again = bl.BANetConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert bl.build_model(cfg).config == cfg


def test_channels_last_gives_the_same_outputs():
    torch.manual_seed(0)
    model = bl.build_model("tiny").eval()
    x = torch.randn(2, 3, 80, 72)
    with torch.no_grad():
        ref = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-4, atol=1e-5)
    for a, b in zip(out.side_boundaries, ref.side_boundaries):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fast_training_step_matches_the_plain_one():
    """fit() trains in channels_last (the layout oneDNN's convolutions are fastest in on CPU),
    upsamples the K-channel outputs in the plain layout and converts the labels once per loss:
    speed changes only. Loss and every gradient must match the plain contiguous step."""
    torch.manual_seed(0)
    plain = bl.build_model("tiny").train()
    fast = copy.deepcopy(plain).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 80)
    y = torch.zeros(2, 1, 64, 80)
    y[:, :, 16:40, 20:60] = 1
    results = []
    for model, inp in ((plain, x), (fast, x.contiguous(memory_format=torch.channels_last))):
        total, parts = bl.JointLoss()(model(inp), y)
        total.backward()
        results.append((parts, {n: p.grad for n, p in model.named_parameters()}))
    (parts_a, grads_a), (parts_b, grads_b) = results
    for name in parts_a:
        torch.testing.assert_close(parts_b[name], parts_a[name], rtol=1e-5, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name, g in grads_a.items():
        torch.testing.assert_close(grads_b[name], g, rtol=1e-3, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_tiny_overfits_one_small_synthetic_batch():
    torch.manual_seed(0)
    size = 64
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks, images = [], []
    for cy, cx, r in [(30, 26, 12), (20, 40, 9), (40, 36, 15), (34, 20, 10)]:
        m = (((yy - cy) ** 2 + ((xx - cx) * 1.3) ** 2) < r**2).float()
        img = 0.35 * m + 0.4 * torch.rand(3, size, size)  # low contrast, noisy
        masks.append(m[None])
        images.append((img - 0.4) / 0.25)
    x, y = torch.stack(images), torch.stack(masks)
    model = bl.build_model("tiny")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = bl.JointLoss()
    for _ in range(60):
        total, _ = loss_fn(model(x), y)
        opt.zero_grad()
        total.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(x).logits.argmax(1, keepdim=True).float()
    dice = (2 * (pred * y).sum() / (pred.sum() + y.sum())).item()
    assert dice > 0.9, dice


# --------------------------------------------------------------- pretrained weights
@pytest.mark.parametrize("preset, expected", [("paper", "imagenet"), ("lite", None), ("tiny", None), ("unet", None)])
def test_default_pretrained_is_imagenet_only_where_the_layout_has_it(preset, expected):
    from banet_lite.model.registry import default_pretrained

    assert default_pretrained(preset) == expected
    assert default_pretrained("paper", base_width=32) is None  # no ImageNet weights at that width
    assert default_pretrained("tiny", base_width=64) == "imagenet"  # ResNet-18 at width 64 has them


def test_resolve_pretrained_spellings():
    from banet_lite.model.registry import resolve_pretrained

    assert resolve_pretrained("auto", "paper") == "imagenet"
    assert resolve_pretrained("auto", "lite") is None and resolve_pretrained("auto", "unet") is None
    for none in (None, "", "none", "None"):
        assert resolve_pretrained(none, "paper") is None
    assert resolve_pretrained("w/resnet50.pth", "paper") == "w/resnet50.pth"


def test_weights_the_network_cannot_take_are_a_clear_value_error():
    with pytest.raises(ValueError, match="U-Net baseline has no ResNet backbone"):
        bl.build_model("unet", pretrained="imagenet")
    with pytest.raises(ValueError, match="U-Net baseline has no ResNet backbone"):
        bl.build_model("unet", pretrained="resnet50.pth")
    with pytest.raises(ValueError, match=r"\['use_pee'\] do not apply to the U-Net"):
        bl.build_model("unet", use_pee=False)  # an ablation switch: a ValueError, not a TypeError
    with pytest.raises(ValueError, match="preset 'tiny'.*no ImageNet weights"):
        bl.build_model("tiny", pretrained="imagenet")
    assert isinstance(bl.build_model("unet", pretrained="auto", base_width=4), bl.UNet)


def test_cff_resize_once_gives_bit_identical_outputs(monkeypatch):
    """The model resizes each S_j once per target size; the old path resized inside each CFF module."""
    torch.manual_seed(0)
    model = bl.build_model("lite").eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        fast = model(x)

        def resize_inside_each_module(feats):  # the straightforward form: every module resizes for itself
            return [None] * len(feats)

        monkeypatch.setattr(bl.model.banet, "resize_for_fusion", resize_inside_each_module)
        monkeypatch.setattr(bl.cff.CrossFeatureFusion, "forward",
                            lambda self, feats, resized=None, details=None: _cff_reference(self, feats))
        plain = model(x)
    assert torch.equal(fast.logits, plain.logits)
    for a, b in zip(fast.side_masks + fast.side_boundaries, plain.side_masks + plain.side_boundaries):
        assert torch.equal(a, b)


def _cff_reference(cff, feats):
    """CFF as the equation reads: out_i = S_i + (1 - sigmoid(W_i S_i)) * sum_j sigmoid(W_j S_j') S_j'."""
    from banet_lite.model.layers import resize_to

    i, s_i = cff.stage, feats[cff.stage]
    received = 0
    for j, s_j in enumerate(feats):
        if j != i:
            s_j = resize_to(s_j, s_i)
            received = received + torch.sigmoid(cff.convs[j](s_j)) * s_j
    gate = 1 - torch.sigmoid(cff.convs[i](s_i))
    return s_i + gate * received, gate
