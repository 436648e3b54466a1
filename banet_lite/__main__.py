"""The command line:
`python -m banet_lite {check-data,train,evaluate,predict,synth,download,diagram} ...`.

A thin front door onto the same functions the notebooks call. `train` takes every `TrainConfig`
field as a flag, generated from the dataclass (`--batch-size 4`, `--amp/--no-amp`,
`--model use_aspp=false`), plus one `--no-<switch>` flag per ablation switch of the config; every
default is the dataclass's. Errors in the user's input (a bad file, a missing folder, an impossible
option, a folder that cannot be written) are `BANetError`s: they end with one line on stderr and
exit code 2, before any work where they can be known before it. Anything else is a bug and keeps its
traceback. Nothing is overwritten unless asked (`--overwrite`). Only the modules of the command that
runs are imported: `--help` needs no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap

from . import __version__
from .data.downloads import DATASETS
from .errors import BANetError
from .model.config import ABLATIONS, BANetConfig
from .renames import RENAMED_SETTINGS
from .training.config import TrainConfig
from .training.resuming import RESUME_MAY_CHANGE

# TrainConfig fields whose flag differs from --<field-name>
FLAG_NAMES = {"model_overrides": "model"}
# --help's description: the docstring's first paragraph, as one line
DESCRIPTION = " ".join(__doc__.split("\n\n")[0].split())
# the one set of defaults: check-data, evaluate and predict take theirs from it too
DEFAULTS = TrainConfig()

EXAMPLES = """examples (a laptop's CPU; README.md, "Quick start"):
  python -m banet_lite check-data data/synthetic             # {check_data}
  python -m banet_lite train --data-dir data/synthetic --out runs/quickstart --epochs 40
  python -m banet_lite train --resume runs/quickstart/last.pt # continue a run with its own settings
  python -m banet_lite evaluate --checkpoint runs/quickstart/best.pt --data-dir data/synthetic
  python -m banet_lite predict --checkpoint runs/quickstart/best.pt --input data/synthetic/images \\
      --output runs/quickstart/predictions --probabilities
  python -m banet_lite train --help                           # {train_help}
""".format(check_data="pairs, sizes, mask values, empty masks, splits",
           train_help="every training setting and its default")

TRAIN_NOTES = textwrap.fill(
    "A new run refuses an --out that holds another run (best.pt, last.pt or history.csv) unless "
    "--overwrite is given (the old run's files are then removed first). --resume PATH continues "
    "the run in PATH with the settings its checkpoint records (preset, data, image size, epochs, "
    "recipe); a flag that contradicts them is an error. Only the session's settings may be given "
    "again: "
    + ", ".join("--" + name.replace("_", "-") for name in RESUME_MAY_CHANGE
                if name not in ("resume", "out"))
    + ", and --out (default: the checkpoint's folder). Settings are checked before any work (one "
    "error line, exit code 2), then the data (check-data's checks). Each epoch prints one line, "
    "with or without progress bars, and every run appends what it prints to run.log in its "
    "folder.", 100)


def ablation_flag(switch: str) -> str:
    """use_pee -> no-pee, deep_supervision -> no-deep-supervision."""
    return "no-" + switch.removeprefix("use_").replace("_", "-")


def _parse_value(text: str):
    """A --model value: true/false, an int, a float, else the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _model_override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or key not in {f.name for f in dataclasses.fields(BANetConfig)}:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FIELD=VALUE, "
                                         "a BANetConfig field, e.g. use_aspp=false")
    return key, _parse_value(value)


def _number_or_none(kind):
    """int or float, or None for "none" (a field whose None means "the preset's" or "off")."""
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)
    parse.__name__ = kind.__name__  # argparse names the type in its error: "invalid int value"
    return parse


def add_train_config_flags(parser: argparse.ArgumentParser, config_cls) -> None:
    """One flag per dataclass field, typed by its annotation; a flag not given keeps the field's
    default."""
    for f in dataclasses.fields(config_cls):
        flag = "--" + FLAG_NAMES.get(f.name, f.name).replace("_", "-")
        kind = str(f.type).split("|")[0].strip()  # "int | None" -> "int"
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = f" (default: {default})" if default not in (None, {}) else ""
        help = f.metadata.get("help", "") + shown
        common = {"dest": f.name, "default": argparse.SUPPRESS, "help": help}
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif kind == "dict":
            parser.add_argument(flag, nargs="+", type=_model_override, metavar="FIELD=VALUE",
                                **common)
        elif kind in ("int", "float"):
            number = {"int": int, "float": float}[kind]
            parser.add_argument(flag,
                                type=_number_or_none(number) if "None" in str(f.type) else number,
                                **common)
        else:
            parser.add_argument(flag, **common)
    for switch in ABLATIONS:
        parser.add_argument(f"--{ablation_flag(switch)}", dest="ablations", action="append_const",
                            const=switch, default=[], help=f"ablation: {switch}=False")


class RenamedFlag(argparse.Action):
    """A flag banet-lite 0.1 had: one error line that names today's flag (argparse's own would only
    say "unrecognized arguments", after the whole usage)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.exit(2, f"error: {option_string} is now --{self.const.replace('_', '-')} "
                       "(banet-lite 0.2 renamed the boundary side's 'edge' settings)\n")


def add_renamed_flags(parser: argparse.ArgumentParser) -> None:
    """0.1's --edge-weight and --edge-pos-weight, hidden from --help."""
    for old, new in RENAMED_SETTINGS.items():
        parser.add_argument("--" + old.replace("_", "-"), action=RenamedFlag, const=new,
                            nargs="?", help=argparse.SUPPRESS)


def given_train_fields(args: argparse.Namespace, config_cls) -> dict:
    """The TrainConfig fields the command line sets (flags not given are absent)."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    given = {k: v for k, v in vars(args).items() if k in names}
    overrides = dict(given.pop("model_overrides", []))
    overrides.update({switch: False for switch in getattr(args, "ablations", [])})
    if overrides:
        given["model_overrides"] = overrides
    return given


def train_config_from_args(args: argparse.Namespace, config_cls):
    """The TrainConfig the flags describe: given flags only, the dataclass's defaults for
    the rest."""
    return config_cls(**given_train_fields(args, config_cls))


def add_diagram_flags(p: argparse.ArgumentParser) -> None:
    """The flags of `diagram`: the PNG file, preset, highlighted blocks, size, dpi, ablations."""
    p.add_argument("out", help="the PNG file to write, e.g. docs/network.png")
    p.add_argument("--preset", default="lite", help="tiny, lite or paper (default: lite)")
    p.add_argument("--highlight", nargs="+", metavar="BLOCK",
                   help="blocks to draw strong, the rest muted: "
                        "backbone, pee, mtl, cff, aspp, decoder, loss")
    p.add_argument("--img-size", type=int, default=256,
                   help="input size the shapes are given for (default: 256)")
    p.add_argument("--dpi", type=int, default=120)
    for switch in ABLATIONS:
        p.add_argument(f"--{ablation_flag(switch)}", dest="ablations", action="append_const",
                       const=switch, default=[], help=f"draw the {switch}=False ablation")


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="python -m banet_lite", description=DESCRIPTION,
                                     epilog=EXAMPLES, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"banet-lite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check-data", help="check a folder dataset: pairs, sizes, "
                                          "mask values, empty masks, splits")
    p.add_argument("data_dir", metavar="DIR",
                   help="images/ + masks/ (or a Kvasir-SEG, ISIC 2018, PH2 folder)")
    p.add_argument("--foreground", type=int,
                   help="the mask value that marks the lesion in label masks")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="of the drawn split (default: %(default)s)")
    p.add_argument("--val-fraction", type=float, default=DEFAULTS.val_fraction,
                   help="(default: %(default)s)")

    p = sub.add_parser("train", epilog=TRAIN_NOTES, formatter_class=raw,
                       help="train BA-Net (or the U-Net baseline); writes best.pt, last.pt, "
                            "history.csv, run.log")
    add_train_config_flags(p, TrainConfig)
    add_renamed_flags(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run that --out holds (its files removed)")

    p = sub.add_parser("evaluate", help="paper metrics of a checkpoint on "
                                        "a folder (by default its test split)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--split", choices=("train", "val", "test", "all"),
                   help="default: test where the folder has split.csv "
                        "or trained the checkpoint, else all")
    p.add_argument("--img-size", type=int, help="default: the checkpoint's")
    p.add_argument("--foreground", type=int,
                   help="the lesion's value in label masks (default: the run's)")
    p.add_argument("--out", help="folder for per_image.csv and summary.json "
                                 "(default: eval_<data folder>_<split> next to the checkpoint)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace another evaluation's results in --out")
    p.add_argument("--device", default=DEFAULTS.device)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=DEFAULTS.progress)

    p = sub.add_parser("predict", help="masks and overlays (and probabilities) "
                                       "for an image or a folder of images")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--output", required=True, help="a folder, not the input folder nor inside it")
    p.add_argument("--probabilities", action="store_true",
                   help="also <stem>_prob.png: the foreground "
                        "probability, 16-bit gray, p = value / 65535")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files an earlier prediction wrote")
    p.add_argument("--img-size", type=int, help="default: the checkpoint's")
    p.add_argument("--device", default=DEFAULTS.device)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=DEFAULTS.progress)

    p = sub.add_parser("synth", help="write the synthetic lesion dataset "
                                     "as an images/ + masks/ folder")
    p.add_argument("--out", required=True, help="a new or empty folder")
    p.add_argument("--n", type=int, default=48)
    p.add_argument("--size", type=int, default=128, help="px, 8 or more (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5)
    p.add_argument("--overwrite", action="store_true",
                   help="write into a folder that holds files already")

    p = sub.add_parser("download", help=f"fetch a public dataset: {', '.join(DATASETS)}")
    p.add_argument("name")
    p.add_argument("--root", help="where datasets live (default: $BANET_DATA_DIR, else "
                                  "the checkout's data/, else ~/.cache/banet-lite/data)")

    p = sub.add_parser("diagram", help="draw the whole network in one picture "
                                       "(PNG), read from the model itself")
    add_diagram_flags(p)
    return parser


def run(args: argparse.Namespace) -> None:
    from . import commands  # the commands and what they import (torch): only now, after parsing

    if args.command == "train":
        # the flags given, not their defaults (--resume)
        args.given = given_train_fields(args, TrainConfig)
    getattr(commands, args.command.replace("-", "_"))(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt as exc:
        print(exc.args[0] if exc.args else "interrupted", file=sys.stderr)
        return 130
    except BANetError as exc:  # the user's input; anything else is a bug and keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
