"""BA-Net configuration: the architecture dataclass and three named presets.

A preset fixes the network's shape (backbone depth and width, the reduced per-stage width R,
the ASPP width); what suits it in training (input size, batch size, learning rate, epochs) is
training's business (training/config.py `TRAINING_DEFAULTS`), so an architecture carries no input
size. Every preset carries the same ablation switches:

| switch             | on (BA-Net)                               | off (plain substitute)          |
|--------------------|-------------------------------------------|---------------------------------|
| `use_pee`          | fuse concat(F', F'-avg_a F', F'-avg_b F') | the same fusion stack on F'     |
|                    |                                           | alone                           |
| `use_ia`           | E = e + (1-sig(A_e e)) s,                 | E = e, S = s (two independent   |
|                    | S = s + (1-sig(A_s s)) e                  | branches)                       |
| `use_cff`          | S_i + gate * sum_j sig(W_j S_j') S_j'     | S_i unchanged (the decoder      |
|                    |                                           | still fuses top-down)           |
| `use_aspp`         | d4 = block(concat(CFF_4, ASPP(x4)))       | d4 = CFF_4                      |
| `deep_supervision` | 4 side masks + 4 side boundaries in loss  | no side heads; only the final   |
|                    |                                           | output is trained               |

`paper` reproduces the reference implementation's structure exactly (42,773,074 parameters for
two classes) and its border rule (`border_rule="zero_padding"`: the zero padding counts in PEE's
averages and in the boundary target, as in the authors' code); the other presets exclude
the padding, which gives a constant map no edge along the image frame. `lite` is the slim CPU
default for real data; `tiny` trains in seconds for tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import ConfigError


@dataclass
class BANetConfig:
    # --- backbone: a ResNet written in this package (see backbone.py) ---
    depth: int = 50  # 18, 34 (basic blocks) or 50, 101 (bottlenecks)
    base_width: int = 64  # channels of the stem and of layer1 before expansion (torchvision: 64)
    output_stride: int = 8  # 8 (the paper: layer3 and layer4 dilated), 16 or 32
    in_channels: int = 3
    # --- BA-Net head ---
    num_classes: int = 2  # K: 1 -> sigmoid output, >= 2 -> softmax output (class 1 = foreground)
    reduce_dim: int = 128  # R: every stage is reduced to R channels before PEE
    # PEE average-pooling kernel sizes per stage (stages 1, 2 see finer detail -> larger kernels)
    pee_kernels: tuple[tuple[int, int], ...] = ((5, 7), (5, 7), (3, 5), (3, 5))
    # reference IA (A_e, A_s blocks); False: the paper's sig(e), sig(s)
    ia_attention_blocks: bool = True
    # reference CFF (a 3x3 conv W before each gate); False: the paper's sig(S)
    cff_gate_convs: bool = True
    # The border rule of PEE's average pooling and of the boundary target (see BORDER_RULES below):
    # "exclude_padding" averages over the pixels that exist (no edge along the image frame);
    # "zero_padding" counts the zero padding, as the reference code does (nn.AvgPool2d's default).
    border_rule: str = "exclude_padding"
    aspp_dim: int = 256
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    # --- ablation switches (see the table above) ---
    use_pee: bool = field(default=True, metadata={"ablation": "PEE"})
    use_ia: bool = field(default=True, metadata={"ablation": "IA"})
    use_cff: bool = field(default=True, metadata={"ablation": "CFF"})
    use_aspp: bool = field(default=True, metadata={"ablation": "ASPP"})
    deep_supervision: bool = field(default=True, metadata={"ablation": "deep supervision"})
    preset: str = "paper"  # the name this config was built from (kept in checkpoints)

    def __post_init__(self):
        if self.border_rule not in BORDER_RULES:
            raise ConfigError(f"border_rule={self.border_rule!r}: unknown; choose one "
                              f"of {sorted(BORDER_RULES)}")

    def to_dict(self) -> dict:
        """Plain types only, so a checkpoint loads with `torch.load(weights_only=True)`."""
        d = asdict(self)
        d["pee_kernels"] = [list(k) for k in self.pee_kernels]
        d["aspp_rates"] = list(self.aspp_rates)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BANetConfig:
        # training keys some checkpoints keep here
        d = {k: v for k, v in d.items() if k not in LEGACY_TRAINING_KEYS}
        d["pee_kernels"] = tuple(tuple(k) for k in d["pee_kernels"])
        d["aspp_rates"] = tuple(d["aspp_rates"])
        return cls(**d)


LEGACY_TRAINING_KEYS = ("img_size", "batch_size", "lr", "epochs")

# border_rule -> `count_include_pad` of every average pooling that looks for edges (PEE's E_k and
# the boundary target). Near the frame a window sticks out of the image; counting the zeros outside
# makes the average drop there, so even a constant map gets an "edge" along the frame.
BORDER_RULES: dict[str, bool] = {"exclude_padding": False, "zero_padding": True}


# The ablation switches, read off the fields marked above:
# {"use_pee": "PEE", ..., "deep_supervision": ...}. The CLI's --no-pee ... flags and
# benchmarks/quality.py's ablation variants are built from this one list.
ABLATIONS: dict[str, str] = {f.name: f.metadata["ablation"] for f in fields(BANetConfig)
                             if "ablation" in f.metadata}


PRESETS: dict[str, BANetConfig] = {
    # The reference configuration: ResNet-50, output stride 8, R = 128, ASPP 256, and
    # the reference's border rule, so the authors' weights compute the authors' function
    # (frame artefact included).
    "paper": BANetConfig(border_rule="zero_padding"),
    # CPU default for real data: ResNet-18 layout at half width, output stride 16, R = 32.
    "lite": BANetConfig(depth=18, base_width=32, output_stride=16, reduce_dim=32, aspp_dim=64,
                        aspp_rates=(3, 6, 9), preset="lite"),
    # Tests and notebooks: trains on 64-128 px images in seconds.
    "tiny": BANetConfig(depth=18, base_width=8, output_stride=8, reduce_dim=16, aspp_dim=16,
                        aspp_rates=(2, 4, 6), preset="tiny"),
}


def min_img_size(network) -> int:
    """The smallest square input (px) a network config takes, found by trying every size from 1 px
    (forward and backward in training mode, then inference; tests/test_cli_hostile.py keeps it
    true): BA-Net any size, as every stage pads (a 1 px input stays 1 px down to the last stage);
    the U-Net baseline 2**depth px (16 for `unet`), as each of its max-pools halves the size and
    a 0 px map fails."""
    from .unet import UNetConfig

    return 2 ** network.depth if isinstance(network, UNetConfig) else 1
