"""The dilated ResNet: stage shapes, torchvision key names, weight loading and its errors."""

import hashlib

import pytest
import torch

import banet_lite as bl
from banet_lite.backbone import DilatedResNet, load_pretrained_backbone


def test_paper_backbone_stage_shapes_at_output_stride_8():
    net = DilatedResNet(50).eval()
    with torch.no_grad():
        feats = net(torch.randn(1, 3, 256, 256))
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 64, 64), (512, 32, 32), (1024, 32, 32), (2048, 32, 32)]


def test_dilation_schedule_matches_the_reference():
    net = DilatedResNet(50)
    assert [b.conv2.dilation[0] for b in net.layer3] == [1, 2, 2, 2, 2, 2]
    assert [b.conv2.dilation[0] for b in net.layer4] == [4, 4, 4]
    assert all(b.conv2.stride[0] == 1 for b in (*net.layer3, *net.layer4))
    assert net.layer2[0].conv2.stride[0] == 2


@pytest.mark.parametrize("depth, n_keys", [(18, 120), (50, 318)])
def test_state_dict_keys_follow_torchvision(depth, n_keys):
    keys = list(DilatedResNet(depth).state_dict())
    assert len(keys) == n_keys  # torchvision's ResNet state dict minus fc.weight and fc.bias
    assert "layer1.0.conv1.weight" in keys and "bn1.running_var" in keys
    assert "layer2.0.downsample.0.weight" in keys and "layer2.0.downsample.1.num_batches_tracked" in keys


def _fake_imagenet_state(depth):
    torch.manual_seed(1)
    state = {k: torch.randn_like(v.float()).to(v.dtype) if v.dtype.is_floating_point else v
             for k, v in DilatedResNet(depth).state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    return state


def test_load_pretrained_from_a_local_file_and_a_file_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    state = _fake_imagenet_state(18)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path = path.rename(tmp_path / f"resnet18-{digest[:8]}.pth")  # torch.hub checks this hash prefix
    model = bl.build_model("tiny", base_width=64)
    unused = load_pretrained_backbone(model, path)
    assert unused == ["fc.bias", "fc.weight"]
    torch.testing.assert_close(model.backbone.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    model2 = bl.build_model("tiny", base_width=64)
    load_pretrained_backbone(model2, path.as_uri())
    torch.testing.assert_close(model2.backbone.conv1.weight, state["conv1.weight"])
    tampered = tmp_path / "resnet18-00000000.pth"  # a name whose hash prefix the bytes do not match
    tampered.write_bytes(path.read_bytes())
    with pytest.raises(RuntimeError, match="hash"):
        load_pretrained_backbone(bl.build_model("tiny", base_width=64), tampered.as_uri())


def test_load_pretrained_errors_are_clear(tmp_path, monkeypatch):
    model = bl.build_model("tiny")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_pretrained_backbone(model, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="base_width 64"):
        load_pretrained_backbone(model, "imagenet")
    path = tmp_path / "r18.pth"
    torch.save(_fake_imagenet_state(18), path)
    with pytest.raises(ValueError, match="do not fit"):
        load_pretrained_backbone(model, path)  # base_width 8 cannot take 64-wide weights
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    wide = bl.build_model("tiny", base_width=64)
    with pytest.raises(RuntimeError, match="pass its local path"):
        load_pretrained_backbone(wide, (tmp_path / "nowhere" / "resnet18-12345678.pth").as_uri())
