"""What each command of `python -m banet_lite` does once its flags are parsed (__main__.py parses
them).

Imported only when a command runs, and each command imports what it needs inside it: `--help`,
`--version` and `check-data` never import torch. Every check that can be made before the work is
made before it: settings, the data, the output folder (writable? holding something that would be
replaced?).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, DatasetError
from .files import check_writable, json_text
from .training.config import TrainConfig

# the session's flags repeated in the resume command printed after Ctrl-C (resuming.py:
# RESUME_MAY_CHANGE)
SESSION_FLAGS = ("device", "workers", "amp", "compile", "channels_last", "cpu_fast_path", "sync_bn",
                 "progress", "checkpoint_every")


def check_data(args) -> None:
    """Print the report of data/checks.py `check_data`; any problem is also the error line
    (exit 2)."""
    from .data.checks import check_data as check

    report = check(args.data_dir, foreground=args.foreground, seed=args.seed,
                   val_fraction=args.val_fraction)
    print("\n".join(report.lines()), flush=True)
    if report.problems:
        more = (f" (and {len(report.problems) - 1} more problem(s), listed above)"
                if len(report.problems) > 1 else "")
        raise DatasetError(report.problems[0] + more)


def session_flags(given: dict) -> list[str]:
    """The session's flags as they were given, to repeat them in the resume command."""
    flags = []
    for name in SESSION_FLAGS:
        if name in given and given[name] is not None:
            flag = "--" + name.replace("_", "-")
            value = given[name]
            flags += ([flag if value else "--no-" + flag[2:]] if isinstance(value, bool)
                      else [flag, str(value)])
    return flags


def train(args) -> None:
    """Settings (from the flags, or from the checkpoint when resuming), the output folder, then
    `fit`."""
    from .model.weights import load_checkpoint
    from .training.resuming import settings_for_resume
    from .training.run_folder import check_run_folder, clear_run_folder, interrupted_note
    from .training.train import fit

    given = args.given
    if given.get("resume"):
        settings = settings_for_resume(given, load_checkpoint(given["resume"]), given["resume"])
    else:
        settings = given
    cfg = TrainConfig(**settings).resolved()  # every setting checked: one line, nothing done yet
    check_writable(cfg.out)
    stale = check_run_folder(cfg.out, cfg.resume, args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        clear_run_folder(stale)
    try:
        # the data are checked first, then the run prints its settings, epochs and end (run.log too)
        fit(cfg)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(interrupted_note(cfg.out, session_flags(given))) from None


def evaluate(args) -> None:
    """Print the summary (strict JSON) before writing per_image.csv and summary.json."""
    from .evaluate import evaluate as run_evaluation

    _, summary = run_evaluation(args.checkpoint, args.data_dir, split=args.split,
                                img_size=args.img_size, out_dir=args.out, device=args.device,
                                progress=args.progress, foreground=args.foreground,
                                overwrite=args.overwrite,
                                show=lambda s: print(json_text(s), flush=True))
    print(f"wrote per_image.csv and summary.json to {summary['results']}")


def predict(args) -> None:
    from .evaluate import OUTPUT_SUFFIXES
    from .evaluate import predict as run_prediction

    written = run_prediction(args.checkpoint, args.input, args.output, img_size=args.img_size,
                             device=args.device, progress=args.progress,
                             probabilities=args.probabilities, overwrite=args.overwrite)
    kinds = [f"<stem>{OUTPUT_SUFFIXES['mask']} (0/255)", f"<stem>{OUTPUT_SUFFIXES['overlay']}"]
    if args.probabilities:
        kinds.append(f"<stem>{OUTPUT_SUFFIXES['probability']} "
                     "(foreground probability, 16-bit: p = value / 65535)")
    print(f"wrote {', '.join(kinds)} for {len(written)} image(s) to {args.output}")


def synth(args) -> None:
    from .data.synthetic import synthetic_sample, synthetic_seed, write_synthetic_dataset

    out = check_writable(args.out)
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"{out}: holds files already; synth writes images/, masks/ and split.csv "
                          "there: choose a new folder, or pass --overwrite")
    # a bad size: one line, no folder
    synthetic_sample(synthetic_seed(args.seed, 0), args.size, args.difficulty)
    write_synthetic_dataset(out, args.n, args.size, seed=args.seed, difficulty=args.difficulty)
    print(f"wrote {args.n} synthetic image/mask pairs to {out}")


def download(args) -> None:
    from .data import download as fetch

    path = fetch(args.name, root=args.root)
    print(f"{args.name} is ready in {path}")


def diagram(args) -> None:
    from .model.registry import make_config
    from .teaching.diagram import draw_network
    from .teaching.plots import save_figure

    if args.img_size < 1 or args.dpi < 1:
        raise ConfigError(f"--img-size {args.img_size} --dpi {args.dpi}: both must be 1 or more")
    model = make_config(args.preset, **{switch: False for switch in args.ablations})
    check_writable(Path(args.out).parent)
    path = save_figure(draw_network(model, args.highlight, args.img_size), args.out, dpi=args.dpi)
    print(f"wrote {path}")
