"""Point the repository's address at a fork: pyproject's [project.urls] and every notebook's Colab badge and
install cell.

    python notebooks/set_repository.py https://github.com/OWNER/NAME             # badges open .../blob/main/...
    python notebooks/set_repository.py https://github.com/OWNER/NAME --branch dev
    python notebooks/set_repository.py --check                                   # do they all agree? (exit 1 if not)

The address is declared once, as Repository in pyproject.toml's [project.urls]; the notebooks carry it in two
places each: the badge in the first cell,
    https://colab.research.google.com/github/OWNER/NAME/blob/BRANCH/notebooks/NN_name.ipynb
and the install cell (the first code cell), which runs `pip install git+https://github.com/OWNER/NAME` on Colab
(`...@BRANCH` when a branch other than main was given). The files are edited as text: only those addresses
change, every other byte of a notebook (outputs, formatting, ids) stays as it was.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
GITHUB = re.compile(r"https://github\.com/([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9._-]+)")
BADGE = re.compile(r"https://colab\.research\.google\.com/github/([^/\s\"')]+)/([^/\s\"')]+)/blob/([^/\s\"')]+)/notebooks/")
INSTALL = re.compile(r"git\+https://github\.com/([^/\s\"'}\\]+)/([^/\s\"'}@\\]+)(?:@([^\s\"'}\\]+))?")


def parse_url(url: str) -> tuple[str, str]:
    """https://github.com/OWNER/NAME (a trailing / or .git is dropped) -> (OWNER, NAME)."""
    url = url.strip().removesuffix("/").removesuffix(".git")
    m = GITHUB.fullmatch(url)
    if not m:
        raise SystemExit(f"set_repository.py: expected https://github.com/OWNER/NAME, got {url!r}")
    return m.group(1), m.group(2)


def declared_url(root: Path = ROOT) -> str:
    """The Repository address in pyproject.toml's [project.urls]."""
    with (root / "pyproject.toml").open("rb") as f:
        urls = tomllib.load(f)["project"].get("urls", {})
    if "Repository" not in urls:
        raise SystemExit("set_repository.py: pyproject.toml has no Repository in [project.urls]")
    return urls["Repository"]


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def notebook_addresses(path: Path) -> dict:
    """The addresses a notebook carries: the badge's (owner, name, branch) and the install cell's
    (owner, name, branch or None), read from its first cell and first code cell."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"])
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    install = "".join(code["source"])
    badges = {m.groups() for m in BADGE.finditer(first)}
    installs = {m.groups() for m in INSTALL.finditer(install)}
    return {"badges": badges, "installs": installs}


def check(root: Path = ROOT) -> list[str]:
    """Problems: notebooks whose badge or install cell is missing or names another repository."""
    owner, name = parse_url(declared_url(root))
    problems = []
    for path in notebooks(root):
        found = notebook_addresses(path)
        if len(found["badges"]) != 1 or next(iter(found["badges"]))[:2] != (owner, name):
            problems.append(f"{path.name}: Colab badge {sorted(found['badges']) or 'missing'}, "
                            f"expected {owner}/{name}")
        if len(found["installs"]) != 1 or next(iter(found["installs"]))[:2] != (owner, name):
            problems.append(f"{path.name}: install cell {sorted(found['installs']) or 'missing'}, "
                            f"expected {owner}/{name}")
    return problems


def _replace_in(text: str, pattern: re.Pattern, new, what: str, path: Path) -> str:
    text, n = pattern.subn(new, text)
    if n == 0:
        raise SystemExit(f"set_repository.py: no {what} found in {path}")
    return text


def set_repository(url: str, branch: str = "main", root: Path = ROOT) -> list[Path]:
    """Rewrite pyproject's [project.urls] and every notebook's badge and install cell; returns the files changed."""
    owner, name = parse_url(url)
    url = f"https://github.com/{owner}/{name}"
    old_url = declared_url(root)
    parse_url(old_url)
    changed = []

    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    start = text.index("[project.urls]")
    end = text.find("\n[", start + 1)
    end = len(text) if end < 0 else end + 1
    section = text[start:end].replace(f'"{old_url}', f'"{url}')
    new_text = text[:start] + section + text[end:]
    if new_text != text:
        pyproject.write_text(new_text, encoding="utf-8")
        changed.append(pyproject)

    suffix = "" if branch == "main" else f"@{branch}"
    for path in notebooks(root):
        text = path.read_text(encoding="utf-8")
        before = json.loads(text)
        badge = f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/notebooks/"
        new_text = _replace_in(text, BADGE, badge, "Colab badge", path)
        new_text = _replace_in(new_text, INSTALL, f"git+{url}{suffix}", "install address", path)
        after = json.loads(new_text)  # still valid JSON, and only the first cell and the install cell changed
        code = next(i for i, c in enumerate(before["cells"]) if c["cell_type"] == "code")
        for i, (a, b) in enumerate(zip(before["cells"], after["cells"])):
            if a != b and i not in (0, code):
                raise SystemExit(f"set_repository.py: {path.name} cell {i} holds the address too; edit it by hand")
        if new_text != text:
            path.write_text(new_text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="https://github.com/OWNER/NAME")
    parser.add_argument("--branch", default="main", help="the branch the Colab badges open (default: main)")
    parser.add_argument("--check", action="store_true", help="only check that the notebooks use pyproject's address")
    args = parser.parse_args(argv)
    if args.check == bool(args.url):
        parser.error("give a repository URL, or --check")
    if args.url:
        for path in set_repository(args.url, args.branch):
            print(f"updated {path.relative_to(ROOT)}")
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"pyproject.toml and {len(notebooks())} notebooks use {declared_url()}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
