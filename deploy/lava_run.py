"""Run a NIR graph deployed by tna on Lava (floating_pt or bit-accurate fixed_pt) over reference inputs.

    .venv-lava/bin/python deploy/lava_run.py MODEL.nir REFERENCE.h5 --mode float|fixed --out OUT.h5 [--samples N]

MODEL.nir is a tna export (deploy/export_nir.py) or any standard graph as `tna deploy GRAPH.nir` wrote
it (deploy/any_graph.py: with dt, T, its input grid and calibration in the metadata, sealed).
Reads the graph and the first N inputs of REFERENCE.h5, builds the Lava network
(deploy/lavanet/network.py), compiles it once, runs all samples back to back and writes OUT.h5
(the format is in deploy/files.py). Prints one JSON line (OUT.h5's attrs plus its path). A user
error (unreadable or foreign file, missing dataset, unsupported node) prints `error: <one line>`
to stderr and exits with code 2. Runs in the Lava environment (Python 3.10, no torch); progress
goes to stderr. The training side runs it through deploy/pipeline.py (`tna deploy`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tna.errors import TnaError  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL.nir")
    p.add_argument("reference", metavar="REFERENCE.h5")
    p.add_argument("--mode", choices=("float", "fixed"), required=True)
    p.add_argument("--out", metavar="OUT.h5", required=True)
    p.add_argument("--samples", type=int, default=None, help="first N samples (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    try:
        from deploy.lavanet.network import run_files

        summary = run_files(args.model, args.reference, args.mode, args.out, args.samples, progress=not args.quiet)
    except TnaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
