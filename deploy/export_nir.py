"""Export a trained run to NIR, with the golden reference the deployment is held to.

    python deploy/export_nir.py RUN_DIR [--out FILE.nir] [--samples N] [--synapses loihi|wide]
    python deploy/export_nir.py RUN_DIR --consumer norse|snntorch [--out FILE.nir]

Writes (default into RUN_DIR/deploy/) model.nir, the network (deploy/graph/from_model.py), readable
with `nir.read` (type-checked), and reference.h5 beside it: N test inputs exactly as they enter the
first layer, and for each arithmetic every spiking layer's spikes and the logits (float/: the
trained model; loihi/: the same graph in Lava's fixed-point arithmetic). Formats: deploy/files.py;
the work: deploy/pipeline.py `export` (which `tna deploy` calls too).

With --consumer, writes instead model-<consumer>.nir (beside --out when given): the graph as that
simulator's released NIR importer runs it unchanged, its readout (sum the Output over the T steps)
and discretisation in the metadata (deploy/graph/consumers.py; docs/consumers.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tna.config import SYNAPSES  # noqa: E402
from tna.errors import TnaError  # noqa: E402

CONSUMERS = ("norse", "snntorch")  # = deploy/graph/consumers.py CONSUMERS (not imported: it needs torch and nir)
DEFAULT_SAMPLES = 16


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a trained run folder (tna train --out RUN_DIR)")
    p.add_argument("--out", metavar="FILE.nir", help="where to write the graph (default RUN_DIR/deploy/model.nir); "
                                                      "reference.h5 goes beside it")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"test samples in the reference (default {DEFAULT_SAMPLES})")
    p.add_argument("--data-root", help="override the run's data root")
    p.add_argument("--synapses", choices=SYNAPSES, help="fixed-point weights: loihi (8-bit mantissa x 2^exp per layer, "
                                                       "as the chip stores them) | wide (any integer conv weight, "
                                                       "Lava only); default: the run's (loihi)")
    p.add_argument("--consumer", choices=CONSUMERS,
                   help="write model-<consumer>.nir for another simulator's NIR importer instead "
                        "(norse: norse.torch.from_nir; snntorch: snntorch.import_nir.import_from_nir)")
    args = p.parse_args(argv)
    try:
        if args.consumer:
            from deploy.pipeline import export_for_consumer

            print(f"wrote {export_for_consumer(args.run_dir, args.consumer, args.out)}")
            return 0
        from deploy.pipeline import export

        nir_path, ref_path = export(args.run_dir, args.out, args.samples, args.data_root, args.synapses)
    except TnaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {nir_path} and {ref_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
