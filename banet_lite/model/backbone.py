"""The encoder: a dilated ResNet that returns its four stage features.

BA-Net keeps detail by stopping the ResNet's downsampling early (output stride 8) and dilating
the later stages instead, so that their receptive field still grows:

    stem:   7x7 conv /2 -> BN -> ReLU -> 3x3 max-pool /2           (B, w, H/4, W/4)
    layer1: blocks at stride 1                                        (B, C1, H/4, W/4)
    layer2: first block stride 2                                      (B, C2, H/8, W/8)
    layer3: stride 1; first block dilation 1, the others dilation 2   (B, C3, H/8, W/8)
    layer4: stride 1; multi-grid dilation (4, 4, 4)                   (B, C4, H/8, W/8)

A 3x3 conv with dilation d sees a (2d+1) x (2d+1) window with the parameters of a 3x3 one, so
the dilated stages see as far as the strided ones would, at 4x (layer3) and 16x (layer4) the
resolution. With bottlenecks (depth 50/101) C = (256, 512, 1024, 2048); with basic blocks
(depth 18/34) C = (64, 128, 256, 512); `base_width` scales them all.

The module and parameter names match torchvision's ResNet (`conv1`, `bn1`, `layer1.0.conv1`,
`layer1.0.downsample.0`, ...), so ImageNet weights load straight in with
`load_pretrained_backbone`, with no torchvision installed. Offline, put torchvision's file
(`imagenet_weights_name(depth)`, e.g. resnet50-0676ba61.pth) at `imagenet_weights_path(depth)`
(the torch hub cache), or pass the file's path instead of "imagenet".
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, DownloadError, MissingFileError, WeightsError
from .layers import conv3x3

# depth -> (block type, blocks per stage)
RESNET_LAYOUTS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                  50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3))}

# torchvision's ImageNet weights (the hex after the name is the start of the file's SHA-256,
# which torch.hub checks).
IMAGENET_URLS = {
    18: "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    34: "https://download.pytorch.org/models/resnet34-b627a593.pth",
    50: "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    101: "https://download.pytorch.org/models/resnet101-63fe2227.pth",
}


class ResidualBlock(nn.Module):
    """y = ReLU(shortcut(x) + F(x)): what both block types share. A subclass builds its layers, then
    calls `_add_shortcut` (so the layers are created, and initialised, in torchvision's order) and
    defines F as `residual`."""

    def _add_shortcut(self, c_in: int, c_out: int, stride: int) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, c_out, stride)

    def residual(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.residual(x) + identity)


class BasicBlock(ResidualBlock):
    """F(x) = BN(conv3x3(ReLU(BN(conv3x3(x))))) (ResNet-18/34)."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = conv3x3(c_in, width, stride=stride, dilation=dilation)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width * self.expansion, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(width * self.expansion)
        self._add_shortcut(c_in, width * self.expansion, stride)

    def residual(self, x: Tensor) -> Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))


class Bottleneck(ResidualBlock):
    """F(x) = BN(1x1(ReLU(BN(3x3(ReLU(BN(1x1(x)))))))) (ResNet-50/101, stride on the 3x3)."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride=stride, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self._add_shortcut(c_in, width * self.expansion, stride)

    def residual(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class SubsampledPointwiseConv(nn.Conv2d):
    """A 1x1 convolution at stride s, computed as the 1x1 convolution of every s-th pixel.

    The same function: a 1x1 kernel at stride s reads exactly x[:, :, ::s, ::s], and the weights
    (and their names) are nn.Conv2d's. Why not nn.Conv2d(stride=s) itself: on AVX-512 CPUs,
    torch 2.13's oneDNN backward pass of that convolution crashes the process for 8-channel
    channels_last inputs of 56 px and more (the `tiny` preset's layer2 shortcut at 224 px;
    benchmarks/RESULTS.md, "A known crash, not ours"). Subsampling first sends it to the plain 1x1
    kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        s_h, s_w = self.stride
        # (B, C_out, ceil(H / s), ceil(W / s))
        return F.conv2d(x[:, :, ::s_h, ::s_w], self.weight, self.bias)


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    """1x1 conv + BN when the residual changes shape (torchvision's `downsample`)."""
    if stride == 1 and c_in == c_out:
        return None
    conv = nn.Conv2d if stride == 1 else SubsampledPointwiseConv
    return nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


def stage_plan(output_stride: int, blocks: tuple[int, ...]) -> list[tuple[int, list[int]]]:
    """(stride, per-block dilations) for layer1..layer4 at the requested output stride."""
    n1, n2, n3, n4 = blocks
    if output_stride == 8:  # the paper: layer3 dilation (1, 2, 2, ...), layer4 multi-grid (4, 4, 4)
        return [(1, [1] * n1), (2, [1] * n2), (1, [1] + [2] * (n3 - 1)), (1, [4] * n4)]
    if output_stride == 16:  # only layer4 dilated
        return [(1, [1] * n1), (2, [1] * n2), (2, [1] * n3), (1, [2] * n4)]
    if output_stride == 32:  # the plain classification ResNet
        return [(1, [1] * n1), (2, [1] * n2), (2, [1] * n3), (2, [1] * n4)]
    raise ConfigError(f"output_stride={output_stride}: must be 8, 16 or 32")


class DilatedResNet(nn.Module):
    """ResNet stem + four stages; forward returns the four stage features (no pooling, no fc)."""

    def __init__(self, depth: int = 50, base_width: int = 64, output_stride: int = 8,
                 in_channels: int = 3):
        super().__init__()
        if depth not in RESNET_LAYOUTS:
            raise ConfigError(f"depth={depth}: must be one of {sorted(RESNET_LAYOUTS)}")
        kind, blocks = RESNET_LAYOUTS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth, self.base_width = depth, base_width
        # stem: 7x7 /2 conv, BN, ReLU, 3x3 /2 max-pool -> 1/4 of the input
        self.conv1 = nn.Conv2d(in_channels, base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)

        c_in, self.channels = base_width, []
        for i, (stride, dilations) in enumerate(stage_plan(output_stride, blocks)):
            width = base_width * 2**i
            layer = []
            for j, dilation in enumerate(dilations):
                layer.append(block(c_in, width, stride if j == 0 else 1, dilation))
                c_in = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            self.channels.append(c_in)

        for m in self.modules():  # He init, as torchvision does; BN starts as identity
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, w, H/4, W/4)
        x1 = self.layer1(x)  # (B, C1, H/4, W/4)
        x2 = self.layer2(x1)  # (B, C2, H/8, W/8)
        x3 = self.layer3(x2)  # (B, C3, H/8, W/8) at output stride 8
        x4 = self.layer4(x3)  # (B, C4, H/8, W/8) at output stride 8
        return [x1, x2, x3, x4]


def imagenet_weights_name(depth: int) -> str:
    """torchvision's file name for the ImageNet ResNet of `depth`, e.g. "resnet50-0676ba61.pth"."""
    if depth not in IMAGENET_URLS:
        raise ConfigError(f"depth={depth}: no ImageNet weights; torchvision has them "
                          f"for {sorted(IMAGENET_URLS)}")
    return IMAGENET_URLS[depth].rsplit("/", 1)[1]


def imagenet_weights_path(depth: int) -> Path:
    """Where torch.hub keeps (and where an offline machine needs) that file:
    `torch.hub.get_dir()/checkpoints/<name>` (`$TORCH_HOME/hub/...`, default
    ~/.cache/torch/hub/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / imagenet_weights_name(depth)


def fetch_imagenet_weights(depth: int, progress: bool = True) -> Path:
    """The local path of torchvision's ImageNet ResNet-`depth` weights, downloaded into the torch
    hub cache on first use (SHA-256 prefix checked, as torch.hub does). Offline and not cached: a
    RuntimeError that names the exact file and the folder to put it in."""
    path = imagenet_weights_path(depth)
    if path.is_file():
        return path
    url = IMAGENET_URLS[depth]

    def fetch():
        path.parent.mkdir(parents=True, exist_ok=True)
        hash_prefix = torch.hub.HASH_REGEX.search(path.name).group(1)
        torch.hub.download_url_to_file(url, str(path), hash_prefix, progress=progress)

    _download(fetch, f"ImageNet weights for ResNet-{depth} are not in the torch hub cache and "
                     f"could not be downloaded from {url}",
              f"Download {path.name} on another machine and place it in {path.parent}/ "
              f"(i.e. {path}), or pass its local path instead: pretrained='path/to/{path.name}' "
              f"(--pretrained path/to/{path.name})")
    return path


def _download(fetch, problem: str, hint: str):
    """`fetch()`, with a network failure or a failed hash check turned into one DownloadError line:
    the problem, then what to do."""
    try:
        return fetch()
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"{problem} ({exc}). Offline? {hint}") from exc
    except RuntimeError as exc:
        # torch.hub's check_hash: the file's SHA-256 does not match its name
        if "hash" not in str(exc):
            raise
        raise DownloadError(f"{problem}: the file failed its SHA-256 check and was not kept "
                            f"({exc}). {hint}") from exc


def describe_weights(source: str | os.PathLike, depth: int) -> str:
    """Where `load_pretrained_backbone(model, source)` takes the weights from, in words
    (for logs)."""
    if source == "imagenet":
        return f"ImageNet (torchvision ResNet-{depth}, {imagenet_weights_path(depth)})"
    return str(source)


def load_pretrained_backbone(model: nn.Module, source: str | os.PathLike = "imagenet") -> list[str]:
    """Load ResNet weights (torchvision key names) into `model.backbone` (or `model` itself).

    `source` is "imagenet" (torchvision's weights for the backbone's depth, from the torch hub
    cache, downloaded there on first use; see `fetch_imagenet_weights`), an http(s):// or file://
    URL, or a local `.pth` file. Keys of the classifier (`fc.*`) are dropped; every backbone
    parameter and BN statistic must be found with the right shape. Returns the list of
    checkpoint keys that were not used.
    """
    backbone = getattr(model, "backbone", model)
    if not isinstance(backbone, DilatedResNet):
        raise TypeError(f"{type(model).__name__} has no DilatedResNet "
                        "backbone to load weights into")
    if source == "imagenet":
        if backbone.base_width != 64:
            raise ConfigError(f"ImageNet weights exist for base_width 64 only (this backbone: "
                              f"{backbone.base_width}); use the 'paper' preset or "
                              "depth/base_width 64")
        source = fetch_imagenet_weights(backbone.depth)
    source = str(source)
    if "://" in source:
        state = _download(
            lambda: torch.hub.load_state_dict_from_url(source, map_location="cpu", check_hash=True,
                                                       weights_only=True, progress=True),
            f"could not download backbone weights from {source}",
            "Download the file elsewhere and pass its local path instead, "
            f"e.g. load_pretrained_backbone(model, 'resnet{backbone.depth}.pth') or --pretrained "
            f"path/to/resnet{backbone.depth}.pth")
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise MissingFileError(f"{path}: backbone weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"{path}: not a readable weights file "
                               f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{source}: not a state dict (found {type(state).__name__})")
    state = state.get("state_dict", state)  # some checkpoints nest the weights

    own = backbone.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise WeightsError(f"{source}: {len(missing)} backbone keys missing, e.g. {missing[:3]}")
    bad_shape = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                 if tuple(state[k].shape) != tuple(v.shape)]
    if bad_shape:
        raise WeightsError(f"{source}: weights do not fit this backbone, e.g. {bad_shape[0]}")
    backbone.load_state_dict({k: state[k] for k in own})
    return sorted(k for k in state if k not in own)
