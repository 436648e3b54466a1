"""Write benchmarks/RESULTS.md, and README.md's results table, from the files the benchmarks wrote.

    python benchmarks/report.py            # rewrite both
    python benchmarks/report.py --check    # exit 1 if either is not what the files make (a test runs this)

It also packs the course's records (payoff, ablation and train sweeps, per-image scores included) into
banet_lite/assets/quality_records.json, which notebook 06 reads from the installed package.

Inputs, and nothing else: the JSON lines under benchmarks/results/ (`speed.py`, `reference_parity.py`,
`quality.py`, each line with its command, date, torch, threads and CPU), the course model's record
(banet_lite/assets/course_model.json), the presets' parameter counts (computed here), and the prose around
the tables in benchmarks/RESULTS.template.md, where a line `{{ NAME [ARG] }}` is replaced by what the
function NAME below makes. A new measurement is a new line in a results file and a rerun of this script;
RESULTS.md is never edited by hand. Figures measured before the records existed are in ARCHIVE.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from common import newest_runs, read_records, results_dir  # benchmarks/common.py: this folder is sys.path[0]

from banet_lite.files import atomic_write
from banet_lite.model.registry import build_model, count_parameters
from banet_lite.stats import format_p
from banet_lite.teaching import claims as course_claims
from banet_lite.teaching import results as course_results

HERE = Path(__file__).resolve().parent
RESULTS_DIR = results_dir()  # where common.record writes
COURSE_RECORD = HERE.parent / "banet_lite" / "assets" / "course_model.json"
BEGIN, END = "<!-- results table: benchmarks/report.py writes it -->", "<!-- end of the results table -->"
CLAIMS_BEGIN, CLAIMS_END = "<!-- claims table: benchmarks/report.py writes it -->", "<!-- end of the claims table -->"


def load(name: str) -> list[dict]:
    return read_records(name, RESULTS_DIR)


@functools.cache
def parameters_of(preset: str, **changes) -> int:
    """A preset's parameter count (built once per configuration: parameters() and headlines() both ask)."""
    return count_parameters(build_model(preset, **changes))


@functools.cache
def course_record() -> dict:
    return json.loads(COURSE_RECORD.read_text())


def mean_sd(values: list[float], digits: int) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def where(r: dict) -> str:
    """The machine a record ran on, in one phrase."""
    return where_all([r])


def where_all(runs: list[dict]) -> str:
    """The machines a set of runs used, each named once with the thread counts its runs had."""
    threads: dict[tuple, set] = {}
    for r in runs:
        threads.setdefault((r["machine"], r["torch"]), set()).add(r["threads"])
    return "; ".join(f"{machine}; torch {torch}, {' or '.join(map(str, sorted(n)))} "
                     f"thread{'s' if n != {1} else ''}" for (machine, torch), n in sorted(threads.items()))


def command(r: dict) -> str:
    return r.get("reproduce") or r["command"]  # records moved from an older script say how to rerun them today


def latest(records: list[dict], key) -> list[dict]:
    """The newest record for each key(record), in first-seen order."""
    newest: dict = {}
    for r in records:
        newest[key(r)] = r
    return list(newest.values())


# ------------------------------------------------------------------------------------------ sections


def parameters() -> str:
    rows = [("`paper`, 2 classes", "paper", {}), ("`paper`, 1 class", "paper", {"num_classes": 1}),
            ("`paper`, 2 classes, no ASPP", "paper", {"use_aspp": False}), ("`lite`", "lite", {}),
            ("`tiny`", "tiny", {}), ("`unet` (the baseline)", "unet", {})]
    lines = ["| configuration | parameters |", "|---|---:|"]
    lines += [f"| {label} | {parameters_of(p, **kw):,} |" for label, p, kw in rows]
    return "\n".join(lines)


def parity() -> str:
    records = load("parity")
    if not records:
        return "No record yet: `python benchmarks/reference_parity.py --reference .bench/BA-Net`."
    r = records[-1]
    controls = "; ".join(f"{name}: {rel:.2g} of the range" for name, rel in r["controls_max_diff_of_range"].items())
    return (f"`{command(r)}` ({r['date'][:10]}; {where(r)}): input {r['size']} px, seed {r['seed']}, "
            f"{r['tensors_loaded']} tensors loaded. Largest difference over the nine outputs "
            f"{r['zero_padding_max_abs_diff']:.2g} ({r['zero_padding_max_diff_of_range']:.2g} of the output's range; "
            f"tolerance {r['tolerance']:g}). The deliberate mapping mistakes, which must be caught: {controls}. "
            f"Verdict: {'passed' if r['passed'] else 'FAILED'}.")


def machines_legend(records: list[dict]) -> tuple[dict, str]:
    """A letter per machine, so a table names it in one column: ({where(r): "A", ...}, the legend)."""
    letters = {m: chr(ord("A") + i) for i, m in enumerate(dict.fromkeys(where(r) for r in records))}
    return letters, "\n".join(f"- machine {letter}: {m}" for m, letter in letters.items())


def speed() -> str:
    records = latest(load("speed"), lambda r: (r["machine"], r["threads"], r["device"], r["preset"], r["precision"],
                                               r["fast_path"], r["compile"], r["size"], r["batch"]))
    if not records:
        return "No record yet: `python benchmarks/speed.py`."
    letters, legend = machines_legend(records)
    lines = ["| date | machine | device | preset | input | batch | precision | fast path | compile | train step (s, "
             "median) | images/s | inference (ms/image) | command |",
             "|---|---|---|---|---:|---:|---|---|---|---:|---:|---:|---|"]
    for r in records:
        lines.append(f"| {r['date'][:10]} | {letters[where(r)]} | {r['device']} | {r['preset']} | {r['size']} | "
                     f"{r['batch']} | {r['precision']} | {'yes' if r['fast_path'] else 'no'} | "
                     f"{'yes' if r['compile'] else 'no'} | {r['train_step_s']:.3f} | {r['train_images_per_s']:.1f} | "
                     f"{r['inference_ms_per_image']:.0f} | `{command(r)}` |")
    return "\n".join(lines + ["", legend])


def speed_vs_reference() -> str:
    records = load("speed_vs_reference")
    if not records:
        return (f"No record since the records began ({records_began()}): `python benchmarks/speed.py --vs-reference "
                "--reference .bench/BA-Net`. The earlier hand-kept measurements are in ARCHIVE.md, \"CPU speed-up "
                "against the reference\".")
    lines = ["| date | input | batch | precision | fast path | library step (s) | authors' step (s) | ratio | "
             "machine |", "|---|---:|---:|---|---|---:|---:|---:|---|"]
    for r in records:
        lines.append(f"| {r['date'][:10]} | {r['size']} | {r['batch']} | {r['precision']} | "
                     f"{'yes' if r['fast_path'] else 'no'} | {r['library_step_s']:.3f} | {r['reference_step_s']:.3f} | "
                     f"{r['ratio']:.2f}x | {where(r)} |")
    return "\n".join(lines)


def quality_groups(sweep: str) -> list[tuple[dict, list[dict]]]:
    """The sweep's runs grouped by what must be equal to compare them: dataset, recipe and --set."""
    groups = defaultdict(list)
    for r in newest_runs(load("quality")):
        if r["sweep"] == sweep:
            key = (r["dataset"], json.dumps(r["recipe"], sort_keys=True), json.dumps(r["set"], sort_keys=True))
            groups[key].append(r)
    return [(runs[0], runs) for runs in groups.values()]


def describe(first: dict, runs: list[dict]) -> str:
    """One group's recipe, budget, machines, dates and commands."""
    rec = first["recipe"]
    text = (f"**{first['dataset']}**: {rec['epochs']} epochs at {rec['img_size']} px, batch {rec['batch_size']}, "
            f"lr {rec['lr']:g}")
    if rec.get("budget_min"):
        text += f", at most {rec['budget_min']:g} minutes per run"
    if first["set"]:
        text += ", " + ", ".join(f"{k}={v}" for k, v in first["set"].items())
    dates = sorted({r["date"][:10] for r in runs})
    text += (f"; {first['n_test']} test images; {where_all(runs)}; "
             f"{dates[0]}{' to ' + dates[-1] if len(dates) > 1 else ''}; ")
    return text + "; ".join(f"`{c}`" for c in dict.fromkeys(command(r) for r in runs))


PAIRED_METRICS = ("dice", "boundary_f")


def paired_rule(runs: list[dict], reference: str) -> list[str]:
    """Each variant against `reference`, image by image on the same test images (seeds averaged per image):
    the mean difference, its 95% bootstrap interval, the sign-flip p-value and the verdict (stats.py,
    notebook 06 teaches it)."""
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    if len(variants) < 2:
        return []
    # a variant takes part when every one of its runs keeps per-image scores
    scored = [v for v in variants if all("per_image" in r for r in runs if r["variant"] == v)]
    unscored = [v for v in variants if v not in scored]
    if reference not in scored or len(scored) < 2:
        return ["No paired verdict: these records carry no per-image scores (they predate them); "
                "rerun the sweep with `benchmarks/quality.py` for one."]
    lines = [f"| variant | metric | minus {reference}'s | 95% interval | p-value | verdict |",
             "|---|---|---:|---|---:|---|"]
    for name in scored:
        if name == reference:
            continue
        for metric in PAIRED_METRICS:
            res = course_results.compare(runs, name, reference, metric)
            lines.append(f"| {name} | {METRIC_NAMES[metric]} | {res.difference:+.3f} | {res.low:+.3f} to "
                         f"{res.high:+.3f} | {format_p(res.p_value)} | "
                         f"{res.verdict(name, reference)} |")
    if unscored:
        whose = "its records predate" if len(unscored) == 1 else "their records predate"
        lines += ["", f"No paired verdict for {', '.join(unscored)}: {whose} per-image scores."]
    return lines


METRIC_NAMES = {"dice": "test Dice", "jaccard": "Jaccard", "accuracy": "AC", "sensitivity": "SE", "specificity": "SP",
                "boundary_f": "boundary F", "hd95": "HD95 (px)"}


def quality(sweep: str) -> str:
    groups = quality_groups(sweep)
    if not groups:
        return f"No run yet: `python benchmarks/quality.py {sweep} ...`."
    out = []
    for first, runs in groups:
        by = defaultdict(list)
        for r in runs:
            by[r["variant"]].append(r)
        metrics = [k for k in METRIC_NAMES if all(k in r for r in runs)]  # older records lack AC, SE, SP
        out += ["- " + describe(first, runs), "",
                "| variant | preset | params | seeds | epochs | minutes per run | "
                + " | ".join(METRIC_NAMES[k] for k in metrics) + " |",
                "|---|---|---:|---:|---:|---:|" + "---:|" * len(metrics)]
        for name, sel in by.items():
            cells = [mean_sd([r[k] for r in sel], 1 if k == "hd95" else 3) for k in metrics]
            epochs = f"{max(r['epochs_trained'] for r in sel)}/{first['recipe']['epochs']}"
            out.append(f"| {name} | {sel[0]['preset']} | {sel[0]['params']:,} | {len(sel)} | {epochs} | "
                       f"{statistics.mean(r['minutes'] for r in sel):.1f} | " + " | ".join(cells) + " |")
        rule = paired_rule(runs, next(iter(by)))
        out += ([""] + rule if rule else []) + [""]
    return "\n".join(out).rstrip()


def course_model() -> str:
    r = course_record()
    recipe = ", ".join(f"{k} {v}" for k, v in r["recipe"].items())
    f1 = " / ".join(f"{v:g}" for v in r["held_out_side_f1"])
    return (f"`{r['command']}` ({r['date']}; {r['machine']}; {r['minutes']} minutes): {recipe}. Kept epoch "
            f"{r['best_epoch']} of {r['epochs_trained']}. Side boundary F1 per stage on {r['held_out']['n']} held-out "
            f"lesions (seed {r['held_out']['seed']}): **{f1}**. Packed as `banet_lite/assets/course_model.pt` "
            f"({r['bytes']:,} bytes, SHA-256 `{r['sha256'][:16]}...`).")


def notebook_times() -> str:
    records = latest(load("notebooks"), lambda r: r["notebook"])
    if not records:
        return "No record yet: `python benchmarks/notebook_times.py`."
    letters, legend = machines_legend(records)
    lines = ["| notebook | seconds | date | machine | load average after |", "|---|---:|---|---|---:|"]
    lines += [f"| {r['notebook']} | {r['seconds']:.0f} | {r['date'][:10]} | {letters[where(r)]} | "
              f"{r.get('load_average_1min', 'n/a')} |" for r in records]
    total = sum(r["seconds"] for r in records) / 60
    return "\n".join(lines + [f"| all {len(records)} | {total:.1f} minutes | | | |", "", legend])


def gpu_checks() -> str:
    records = load("gpu_check")
    if not records:
        return "No record yet: no GPU was lent to this project's sessions."
    lines = ["| date | commit | device | precision | preset | epochs | images/s | s per epoch | peak GPU MiB | "
             "test Dice | CUDA tests |", "|---|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in records:
        lines.append(f"| {r['date'][:10]} | `{r['commit']}` | {r['device']} | {r['precision']} | {r['preset']} | "
                     f"{r['epochs_run']}/{r['epochs_planned']} | {r['images_per_s']:.1f} | "
                     f"{r['seconds_per_epoch']:.1f} | "
                     f"{r['peak_gpu_memory_mib'] or 'n/a'} | {r['test']['dice']:.3f} | {r['cuda_tests']} |")
    return "\n".join(lines)


def headlines() -> str:
    """README's results table: one line per kind of measurement, the newest figure of each."""
    rows = [("`paper` parameters (2 / 1 classes; no ASPP)", " / ".join(
        f"{parameters_of('paper', **kw):,}" for kw in ({}, {"num_classes": 1}, {"use_aspp": False}))
        + " (equal to the reference's, asserted in tests)")]
    for _, runs in quality_groups("train"):
        for r in runs:
            rows.append((f"{r['dataset']} from scratch, `{r['preset']}`, {r['epochs_trained']} epochs at "
                         f"{r['recipe']['img_size']} px, {r['minutes']:.0f} min on {r['threads']} CPU "
                         f"thread{'s' if r['threads'] != 1 else ''}",
                         f"test Dice {r['dice']:.3f}, Jaccard {r['jaccard']:.3f}, HD95 {r['hd95']:.1f} px"))
    for sweep, what in (("payoff", "the payoff of boundary supervision"), ("ablation", "ablation")):
        for first, runs in quality_groups(sweep):
            means = defaultdict(list)
            for r in runs:
                means[r["variant"]].append(r["dice"])
            low, high = min(map(len, means.values())), max(map(len, means.values()))  # seeds per variant
            uneven = low != high  # a sweep under way: each variant's mean says how many seeds it has
            seeds = f"{low}-{high} seeds per variant" if uneven else f"{low} seed{'s' if low != 1 else ''}"
            rows.append((f"{what}, {first['dataset']}, `lite` from scratch, {first['recipe']['epochs']} epochs, "
                         f"{seeds} (means; verdicts: the claims table)",
                         "test Dice " + "; ".join(f"{k} {statistics.mean(v):.3f}" + (f" ({len(v)})" if uneven else "")
                                                  for k, v in means.items())))
    for r in latest(load("speed"), lambda r: (r["preset"], r["size"])):
        rows.append((f"training speed, `{r['preset']}` at {r['size']} px, batch {r['batch']}, {r['precision']}, "
                     f"{r['threads']} CPU threads",
                     f"{r['train_step_s']:.2f} s per step ({r['train_images_per_s']:.1f} images/s)"))
    course = course_record()
    rows.append(("the course model (`tiny`, synthetic lesions), side boundary F1 on held-out lesions",
                 " / ".join(f"{v:g}" for v in course["held_out_side_f1"]) + " (stages 1-4)"))
    times = latest(load("notebooks"), lambda r: r["notebook"])
    if times:
        rows.append((f"the {len(times)} notebooks run top to bottom on {times[-1]['threads']} CPU threads",
                     f"{sum(r['seconds'] for r in times) / 60:.1f} minutes in all (RESULTS.md has each)"))
    parity_records = load("parity")
    if parity_records:
        r = parity_records[-1]
        rows.append(("`paper` given the authors' weights, against their network",
                     f"largest difference {r['zero_padding_max_abs_diff']:.1e} over the nine outputs"))
    return "\n".join(["| what | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])


def claims() -> str:
    """The paper's claims, each with its paired test on every dataset that has the runs (teaching/claims.py,
    notebook 06): README's claims table and RESULTS.md's."""
    rows = course_claims.claims_table(course_claims.COURSE_BUDGETS, newest_runs(load("quality")))
    budgets = "; ".join(f"{sweep}: " + ", ".join(f"{d} {e} epochs" for d, e in by.items())
                        for sweep, by in course_claims.COURSE_BUDGETS.items())
    lines = ["| claim of the paper | compared | measured: A minus B [95% interval], p | verdict |", "|---|---|---|---|"]
    lines += [f"| {r['claim']} | {r['test'].rsplit(', paired', 1)[0]} | {r['measured']} | {r['verdict']} |"
              for r in rows]
    return "\n".join(lines + ["", f"Runs compared ({budgets}); p-values not corrected for the number of tests."])


SECTIONS = {"claims": claims, "parameters": parameters, "parity": parity, "speed": speed,
            "speed_vs_reference": speed_vs_reference,
            "quality": quality, "course_model": course_model, "notebook_times": notebook_times,
            "gpu_checks": gpu_checks, "headlines": headlines}


def records_began() -> str:
    """The date of the oldest record in benchmarks/results (the figures before it are in ARCHIVE.md)."""
    dates = [r["date"][:10] for path in sorted(results_dir().glob("*.jsonl"))
             for r in read_records(path.stem) if "date" in r]
    return min(dates) if dates else "no records yet"


def render(template: str) -> str:
    template = template.replace("{{ records_began }}", records_began())  # the one inline field

    def fill(match: re.Match) -> str:
        name, *args = match.group(1).split()
        if name not in SECTIONS:
            raise SystemExit(f"RESULTS.template.md: unknown section {{{{ {name} }}}}; known: {', '.join(SECTIONS)}")
        return SECTIONS[name](*args)
    return re.sub(r"^\{\{ (.+?) \}\}$", fill, template, flags=re.M)


def with_readme_table(readme: str, table: str, begin: str = BEGIN, end: str = END) -> str:
    if begin not in readme or end not in readme:
        raise SystemExit(f"README.md: the markers {begin!r} and {end!r} around a generated table are missing")
    return readme[: readme.index(begin) + len(begin)] + "\n" + table + "\n" + readme[readme.index(end):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is out of date")
    parser.add_argument("--section", nargs="+", metavar="NAME [ARG]", help="print one section, write nothing")
    args = parser.parse_args(argv)
    if args.section:
        print(render("{{ " + " ".join(args.section) + " }}"))
        return 0
    targets = {HERE / "RESULTS.md": render((HERE / "RESULTS.template.md").read_text()),
               HERE.parent / "README.md": with_readme_table(with_readme_table(
                   (HERE.parent / "README.md").read_text(), headlines()), claims(), CLAIMS_BEGIN, CLAIMS_END),
               course_results.RECORDS: course_results.dumps(course_results.pack(newest_runs(load("quality"))))}
    stale = [path for path, text in targets.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path}: out of date; run python benchmarks/report.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        atomic_write(path, targets[path].encode())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
