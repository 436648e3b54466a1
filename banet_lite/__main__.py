"""The command line: `python -m banet_lite {synth,train,evaluate,predict,download} ...`.

A thin front door onto the same functions the notebooks call. Errors in the user's input
(a bad file, a missing folder, an impossible option) end with one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import data as bdata

ABLATIONS = {"no_pee": "use_pee", "no_ia": "use_ia", "no_cff": "use_cff", "no_aspp": "use_aspp",
             "no_deep_supervision": "deep_supervision"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m banet_lite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write the synthetic lesion dataset as an images/ + masks/ folder")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=48)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5)

    p = sub.add_parser("train", help="train BA-Net (or the U-Net baseline); writes last.pt, best.pt, history.csv")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data-dir", help="images/ + masks/ folder (or a Kvasir-SEG, ISIC 2018, PH2 layout)")
    src.add_argument("--dataset", help=f"a dataset to download: {', '.join(bdata.DATASETS)}")
    p.add_argument("--preset", default="tiny", help="tiny, lite, paper or unet (default: tiny)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--img-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--out", default="runs/banet")
    p.add_argument("--resume", help="continue from a checkpoint (RUN/last.pt)")
    p.add_argument("--time-budget", type=float, help="seconds; stops cleanly after the epoch in progress")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-classes", type=int, default=2)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (images decoded once)")
    p.add_argument("--no-amp", action="store_true", help="full precision on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--aug-strength", type=float, default=1.0)
    p.add_argument("--pretrained", help="backbone weights: auto (ImageNet for paper, none for the other presets), "
                                        "imagenet, none, a URL or a .pth file with torchvision key names "
                                        "(default: none)")
    p.add_argument("--edge-pos-weight", type=float)
    p.add_argument("--synthetic-train", type=int, default=96, help="training images of the synthetic default")
    for flag in ABLATIONS:
        p.add_argument(f"--{flag.replace('_', '-')}", action="store_true", help=f"ablation: {ABLATIONS[flag]}=False")

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
    return parser


def run(args: argparse.Namespace) -> None:
    if args.command == "synth":
        out = bdata.write_synthetic_dataset(args.out, args.n, args.size, seed=args.seed, difficulty=args.difficulty)
        print(f"wrote {args.n} synthetic image/mask pairs to {out}")
    elif args.command == "train":
        from .train import TrainConfig, fit

        cfg = TrainConfig(
            preset=args.preset, data_dir=args.data_dir, dataset=args.dataset, out=args.out, epochs=args.epochs,
            batch_size=args.batch_size, img_size=args.img_size, lr=args.lr, num_classes=args.num_classes,
            seed=args.seed, device=args.device, amp=not args.no_amp, compile=args.compile, workers=args.workers,
            augment=not args.no_augment, aug_strength=args.aug_strength, pretrained=args.pretrained,
            edge_pos_weight=args.edge_pos_weight, resume=args.resume, time_budget=args.time_budget,
            synthetic_train=args.synthetic_train,
            model_overrides={field: False for flag, field in ABLATIONS.items() if getattr(args, flag)},
        )
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (bdata.DatasetError, FileNotFoundError, ValueError, FloatingPointError, RuntimeError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
