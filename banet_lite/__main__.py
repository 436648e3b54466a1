"""The command line: `python -m banet_lite {synth,train,evaluate,predict,download,diagram} ...`.

A thin front door onto the same functions the notebooks call. `train` takes every `TrainConfig`
field as a flag, generated from the dataclass (`--batch-size 4`, `--amp/--no-amp`, `--model use_aspp=false`),
plus one `--no-<switch>` flag per ablation switch of the config. Errors in the user's input (a bad
file, a missing folder, an impossible option) are `BANetError`s: they end with one line on stderr
and exit code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from . import data as bdata
from .errors import BANetError, ConfigError
from .model.config import ABLATIONS, BANetConfig

# TrainConfig fields whose flag differs from --<field-name>
FLAG_NAMES = {"model_overrides": "model"}


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
        raise argparse.ArgumentTypeError(f"{text!r}: expected FIELD=VALUE, a BANetConfig field, e.g. use_aspp=false")
    return key, _parse_value(value)


def add_train_config_flags(parser: argparse.ArgumentParser, config_cls) -> None:
    """One flag per dataclass field, typed by its annotation; a flag not given keeps the field's default."""
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
            parser.add_argument(flag, nargs="+", type=_model_override, metavar="FIELD=VALUE", **common)
        else:
            parser.add_argument(flag, type={"int": int, "float": float}.get(kind, str), **common)
    for switch in ABLATIONS:
        parser.add_argument(f"--{ablation_flag(switch)}", dest="ablations", action="append_const", const=switch,
                            default=[], help=f"ablation: {switch}=False")


def train_config_from_args(args: argparse.Namespace, config_cls):
    """The TrainConfig the flags describe: given flags only, the dataclass's defaults for the rest."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    given = {k: v for k, v in vars(args).items() if k in names}
    overrides = dict(given.pop("model_overrides", []))
    overrides.update({switch: False for switch in args.ablations})
    if overrides:
        given["model_overrides"] = overrides
    return config_cls(**given)


def build_parser() -> argparse.ArgumentParser:
    from .training.train import TrainConfig

    parser = argparse.ArgumentParser(prog="python -m banet_lite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write the synthetic lesion dataset as an images/ + masks/ folder")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=48)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5)

    p = sub.add_parser("train", help="train BA-Net (or the U-Net baseline); writes last.pt, best.pt, history.csv")
    add_train_config_flags(p, TrainConfig)

    p = sub.add_parser("evaluate", help="paper metrics of a checkpoint on a folder (or its test split)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--split", help="use the folder's split.csv, e.g. --split test")
    p.add_argument("--img-size", type=int)
    p.add_argument("--out", help="folder for per_image.csv and summary.json (default: next to the checkpoint)")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("predict", help="masks and overlays for a folder of images")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--img-size", type=int)
    p.add_argument("--device", default="auto")

    p = sub.add_parser("download", help=f"fetch a public dataset: {', '.join(bdata.DATASETS)}")
    p.add_argument("name")
    p.add_argument("--root", help="where datasets live (default: $BANET_DATA_DIR, else the checkout's data/, "
                                  "else ~/.cache/banet-lite/data)")

    p = sub.add_parser("diagram", help="draw the whole network in one picture (PNG), read from the model itself")
    p.add_argument("out", help="the PNG file to write, e.g. docs/network.png")
    p.add_argument("--preset", default="lite", help="tiny, lite or paper (default: lite)")
    p.add_argument("--highlight", nargs="+", metavar="BLOCK",
                   help="blocks to draw strong, the rest muted: backbone, pee, mtl, cff, aspp, decoder, loss")
    p.add_argument("--img-size", type=int, default=256, help="input size the shapes are given for (default: 256)")
    p.add_argument("--dpi", type=int, default=120)
    for switch in ABLATIONS:
        p.add_argument(f"--{ablation_flag(switch)}", dest="ablations", action="append_const", const=switch,
                       default=[], help=f"draw the {switch}=False ablation")
    return parser


def run(args: argparse.Namespace) -> None:
    if args.command == "synth":
        out = bdata.write_synthetic_dataset(args.out, args.n, args.size, seed=args.seed, difficulty=args.difficulty)
        print(f"wrote {args.n} synthetic image/mask pairs to {out}")
    elif args.command == "train":
        from .training.train import TrainConfig, fit

        cfg = train_config_from_args(args, TrainConfig)
        if cfg.data_dir and cfg.dataset:
            raise ConfigError("--data-dir and --dataset: give one of them, not both")
        result = fit(cfg)
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"best val Dice {result.best_score:.4f}; checkpoints: {result.best_path}, {result.last_path}")
    elif args.command == "evaluate":
        from .evaluate import evaluate

        _, summary = evaluate(args.checkpoint, args.data_dir, split=args.split, img_size=args.img_size,
                              out_dir=args.out, device=args.device)
        print(json.dumps(summary, indent=2))
    elif args.command == "predict":
        from .evaluate import predict

        written = predict(args.checkpoint, args.input, args.output, img_size=args.img_size, device=args.device)
        print(f"wrote {len(written)} masks and overlays to {args.output}")
    elif args.command == "download":
        path = bdata.download(args.name, root=args.root)
        print(f"{args.name} is ready in {path}")
    elif args.command == "diagram":
        from .model.banet import make_config
        from .teaching.diagram import draw_network
        from .teaching.plots import save_figure

        model = make_config(args.preset, **{switch: False for switch in args.ablations})
        path = save_figure(draw_network(model, args.highlight, args.img_size), args.out, dpi=args.dpi)
        print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BANetError as exc:  # the user's input; anything else is a bug and keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
