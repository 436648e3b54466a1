"""The dilated ResNet: stage shapes, torchvision key names, weight loading and its errors."""

import hashlib

import pytest
import torch

import banet_lite as bl
from banet_lite.model.backbone import DilatedResNet, load_pretrained_backbone


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


@pytest.mark.parametrize("size", [63, 64])
def test_the_subsampled_shortcut_is_the_strided_1x1_convolution(size):
    from torch import nn

    from banet_lite.model.backbone import SubsampledPointwiseConv

    torch.manual_seed(0)
    strided, ours = nn.Conv2d(8, 16, 1, stride=2, bias=False), SubsampledPointwiseConv(8, 16, 1, stride=2, bias=False)
    ours.load_state_dict(strided.state_dict())  # the same parameter, the same name
    x = torch.randn(2, 8, size, size + 1)
    expected, got = strided(x), ours(x)
    torch.testing.assert_close(got, expected)
    grads = [torch.autograd.grad(m(x).square().sum(), m.weight)[0] for m in (strided, ours)]
    scale = grads[0].abs().max().item()  # the weight gradient is summed over pixels in another order
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5 * scale)


def test_tiny_trains_at_256_px_where_the_strided_kernel_crashed():
    """torch 2.13's oneDNN backward of a strided 1x1 conv on 8 channels_last channels crashed the process on
    AVX-512 CPUs from 56 px (tiny's layer2 shortcut). In a child process, so a crash fails only this test."""
    import subprocess
    import sys

    code = ("import torch, banet_lite as bl; torch.manual_seed(0); "
            "m = bl.build_model('tiny').to(memory_format=torch.channels_last); "
            "x = torch.randn(2, 3, 256, 256).contiguous(memory_format=torch.channels_last); "
            "m(x).logits.sum().backward(); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


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


def _torchvision_file(path, depth=50):
    """A torchvision-format ResNet state dict (random weights, plus the classifier) saved at `path`."""
    state = _fake_imagenet_state(depth)
    width = DilatedResNet(depth).channels[-1]
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, width), torch.randn(1000)
    torch.save(state, path)
    return state


def test_build_model_paper_with_a_local_weights_file_equals_the_file(tmp_path):
    path = tmp_path / "resnet50-local.pth"
    state = _torchvision_file(path)
    model = bl.build_model("paper", pretrained=str(path))
    own = model.backbone.state_dict()
    assert len(own) == 318 and set(state) - set(own) == {"fc.weight", "fc.bias"}
    for key, value in own.items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)
    # the rest of the network is not touched: the same as without weights, given the same seed
    torch.manual_seed(0)
    with_file = bl.build_model("paper", pretrained=path).decoder.state_dict()
    torch.manual_seed(0)
    without = bl.build_model("paper").decoder.state_dict()
    for key, value in without.items():
        torch.testing.assert_close(with_file[key], value, rtol=0, atol=0, msg=key)


def test_imagenet_comes_from_the_torch_hub_cache_without_network(tmp_path, monkeypatch):
    from banet_lite.model import backbone

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    path = backbone.imagenet_weights_path(50)
    assert path == tmp_path / "hub" / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    assert backbone.imagenet_weights_name(18) == "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    state = _torchvision_file(path)

    def no_network(*args, **kwargs):
        raise AssertionError("the cached file should have been used")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    net = DilatedResNet(50)
    assert load_pretrained_backbone(net, "imagenet") == ["fc.bias", "fc.weight"]
    torch.testing.assert_close(net.layer4[2].conv3.weight, state["layer4.2.conv3.weight"])
    assert str(path) in backbone.describe_weights("imagenet", 50)


def test_imagenet_offline_error_names_the_exact_file_and_folder(tmp_path, monkeypatch):
    import urllib.error

    from banet_lite.model import backbone

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    folder = tmp_path / "hub" / "hub" / "checkpoints"
    with pytest.raises(RuntimeError) as err:
        load_pretrained_backbone(DilatedResNet(50), "imagenet")
    message = str(err.value)
    assert "resnet50-0676ba61.pth" in message and str(folder) in message
    assert backbone.IMAGENET_URLS[50] in message and "pass its local path" in message
    assert not list(folder.glob("*"))  # nothing half-written left behind


def test_a_weights_file_that_is_not_a_state_dict_is_named(tmp_path):
    bad = tmp_path / "notes.pth"
    bad.write_bytes(b"not torch")
    with pytest.raises(ValueError, match="notes.pth"):
        bl.build_model("tiny", base_width=64, pretrained=bad)


def test_a_download_that_fails_its_hash_check_is_one_download_error(tmp_path, monkeypatch):
    """torch.hub checks a downloaded file's SHA-256 against the hash prefix in its name; a mismatch is a
    user-facing DownloadError (one CLI line), not a RuntimeError traceback, and nothing is kept."""
    from banet_lite.errors import DownloadError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    served = tmp_path / "served" / "resnet18-deadbeef.pth"  # the name promises a hash the bytes do not have
    served.parent.mkdir()
    torch.save(DilatedResNet(18).state_dict(), served)
    with pytest.raises(DownloadError, match="SHA-256") as err:
        load_pretrained_backbone(DilatedResNet(18), served.as_uri())
    assert "resnet18-deadbeef.pth" in str(err.value) or served.as_uri() in str(err.value)
    assert not list((tmp_path / "hub").rglob("resnet18-deadbeef.pth"))
