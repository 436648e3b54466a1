"""Run notebooks with nbclient, as test_colab_environment.py asks; this script runs *inside* the Colab-like
virtual environment (its own nbclient and jupyter_client, the versions Colab pins), so the kernel is that
environment's Python.

    python run_notebooks.py JOB.json
JOB.json: {"kernel_name": "colab", "runs": [{"notebook": IN, "output": OUT, "cwd": DIR, "timeout": SECONDS}]}
Writes each executed notebook to OUT (also when a cell fails) and prints one line per run:
    RESULT {"notebook": IN, "ok": true|false, "error": "...", "seconds": S}
"""

from __future__ import annotations

import json
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main(job_path: str) -> int:
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    for run in job["runs"]:
        nb = nbformat.read(run["notebook"], as_version=4)
        client = NotebookClient(nb, timeout=run["timeout"], kernel_name=job["kernel_name"], startup_timeout=120,
                                resources={"metadata": {"path": run["cwd"]}})
        start, error = time.time(), ""
        try:
            client.execute()
        except CellExecutionError as e:
            error = str(e)
        except Exception as e:  # a kernel that died or timed out: still write what ran, and say so
            error = f"{type(e).__name__}: {e}"
        nbformat.write(nb, run["output"])
        result = {"notebook": run["notebook"], "ok": not error, "error": error[-6000:],
                  "seconds": round(time.time() - start, 1)}
        print("RESULT", json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
