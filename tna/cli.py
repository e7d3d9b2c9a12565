"""`tna`: the command line. Each subcommand is a thin shell around one module.

    tna train   train a spiking network with a strategy (baseline, kd, enof, tna)    tna/train.py
    tna eval    re-evaluate a run folder on its test set                             tna/evaluate.py
    tna deploy  export to NIR, run on Lava (float / fixed point), verify spike by spike  deploy/pipeline.py
    tna report  spikes, operations, memory, energy estimates and hardware fit of a run  deploy/report/report.py

With tna/deployed.py, this is the only module of tna/ that imports deploy/ (tests/test_imports.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from tna import runs
from tna.config import TrainConfig
from tna.errors import TnaError

EXAMPLES = """examples:
  tna train --out runs/demo                         # the demo: ternary TNA convnet on bundled MNIST digits
  tna train --strategy baseline --weights full --out runs/base-fp
  tna train --neuron relu --weights full --strategy baseline --out runs/ann   # an ANN teacher
  tna train --strategy kd --teacher runs/ann --out runs/kd
  tna train --strategy enof --teacher runs/ann --out runs/enof
  tna train --resume runs/demo                      # continue an interrupted run
  tna train --init runs/demo --arithmetic loihi --epochs 1 --lr 3e-4 --out runs/demo-ft   # fine-tune as deployed
  torchrun --nproc_per_node 2 -m tna.cli train --out runs/ddp   # data-parallel (gloo on CPU)
  tna eval runs/demo
  tna deploy runs/demo --samples 16                 # NIR -> Lava floating_pt + fixed_pt -> verification.json
"""


def _train_parser(sub) -> argparse.ArgumentParser:
    d = TrainConfig()
    p = sub.add_parser("train", help="train a spiking network", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a (ternary) spiking network. Writes RUN_DIR/{config.json, checkpoint.pt, "
                                   "epochs.jsonl, metrics.json}; every option is saved in config.json.")
    g = p.add_argument_group("run")
    g.add_argument("--out", metavar="RUN_DIR", help="run folder to create (never overwrites a finished run)")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last saved epoch")
    g.add_argument("--config", metavar="FILE", help="start from a saved config.json (options given here override it)")
    g.add_argument("--seed", type=int, help=f"seed for init, shuffling and encoding noise (default {d.seed})")
    g.add_argument("--device", help=f"cpu | cuda (default {d.device})")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", help=f"mnist5k | mnist5k-dvs | mnist1d | cifar10 | cifar100 | cifar10-dvs (default {d.dataset}; "
                                          f"mnist1d wants --model convnet1d)")
    g.add_argument("--data-root", help="folder holding CIFAR / CIFAR10-DVS (nothing is downloaded)")
    g.add_argument("-T", "--time-steps", dest="T", type=int, help=f"time steps per sample (default {d.T})")
    g.add_argument("--encoding", help=f"static images: direct (analog input every step) | rate (Bernoulli spikes) (default {d.encoding})")
    g.add_argument("--no-augment", dest="augment", action="store_const", const=False, help="no training augmentation")
    g.add_argument("--train-samples", type=int, metavar="N", help="train on a random subset of N training samples, fixed by --seed (quick checks)")
    g.add_argument("--val-fraction", type=float, metavar="F", help=f"hold out this stratified part of the training "
                   f"split (the same samples for every run and seed) to choose hyperparameters on; 0: none "
                   f"(default {d.val_fraction})")
    g.add_argument("--workers", type=int, help=f"data loader processes (default {d.workers})")
    g = p.add_argument_group("model")
    g.add_argument("--model", help=f"convnet | convnet1d (1-D signals: mnist1d) | vgg11 | resnet20 (default {d.model})")
    g.add_argument("--width", type=float, help=f"channel multiplier (default {d.width})")
    g.add_argument("--neuron", help=f"lif | relu (relu = the ANN of the same shape, a teacher) (default {d.neuron})")
    g.add_argument("--tau-mem", type=float, help=f"membrane time constant in s (default {d.tau_mem})")
    g.add_argument("--dt", type=float, help=f"time step in s (default {d.dt}); decay per step = dt/tau_mem")
    g.add_argument("--v-th", type=float, help=f"firing threshold (default {d.v_th})")
    g.add_argument("--surrogate", help=f"Norse surrogate gradient: triangle | super | tanh | circ (default {d.surrogate})")
    g.add_argument("--surrogate-alpha", type=float, help=f"surrogate sharpness (default {d.surrogate_alpha})")
    g.add_argument("--weights", help=f"full | ternary ({{-a,0,+a}} per output channel, STE) (default {d.weights})")
    g.add_argument("--ends", help=f"precision of first and last layer when --weights ternary: ternary | full (default {d.ends})")
    g = p.add_argument_group("strategy")
    g.add_argument("--strategy", help=f"baseline | kd | enof | tna (default {d.strategy})")
    g.add_argument("--teacher", metavar="RUN_DIR", help="kd, enof: a finished teacher run (enof: an ANN, --neuron relu)")
    g.add_argument("--kd-temperature", type=float, help=f"kd: softmax temperature (default {d.kd_temperature})")
    g.add_argument("--kd-weight", type=float, help=f"kd: weight of the distillation term (default {d.kd_weight})")
    g.add_argument("--enof-temperature", type=float, help=f"enof: LAF temperature (default {d.enof_temperature})")
    g.add_argument("--enof-weight", type=float, help=f"enof: weight of the LAF loss (default {d.enof_weight})")
    g.add_argument("--alpha", type=float, help=f"tna: weight of MSE(base logits, twin logits); the logits are the "
                                               f"readout averaged over the T steps, and the MSE is reduced as "
                                               f"--mse-reduction says. The epoch line's 'match' is alpha*MSE's share "
                                               f"of the loss: near 0%% the twin is uncoupled (default {d.alpha})")
    g.add_argument("--mse-reduction", help=f"tna: batchmean (sum over classes, mean over the batch, as the authors' "
                                           f"code) | mean (also / classes, torch's default) | sum "
                                           f"(default {d.mse_reduction})")
    g.add_argument("--twin-weights", help=f"tna: twin precision: same | full | ternary (default {d.twin_weights})")
    g.add_argument("--twin-width", type=float, help=f"tna: twin channel multiplier (default {d.twin_width})")
    g.add_argument("--arithmetic", help="the base network's forward arithmetic: float (default) | loihi (Lava fixed "
                                        "point, exact, with straight-through gradients: train as deployed)")
    g.add_argument("--synapses", help=f"fixed-point weights, for --arithmetic loihi and this run's deployment: loihi "
                                      f"(8-bit weights x 2^exp per layer, as the chip stores them) | wide (any "
                                      f"integer conv weight; Lava only) (default {d.synapses})")
    g.add_argument("--init", metavar="RUN_DIR", help="start from a finished run's weights (fine-tuning, e.g. with "
                                                      "--arithmetic loihi)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help=f"(default {d.epochs})")
    g.add_argument("--batch-size", type=int, help=f"global batch size (default {d.batch_size})")
    g.add_argument("--lr", type=float, help=f"peak learning rate of AdamW with a one-cycle schedule (default {d.lr})")
    g.add_argument("--weight-decay", type=float, help=f"(default {d.weight_decay})")
    return p


def _config_from_args(args) -> tuple[TrainConfig, bool]:
    """Merge: defaults <- --config file <- explicit options. --resume takes the run's own config."""
    from tna.config import CONFIG_FILE, load_config
    from tna.train import resume_config

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    if args.resume:
        if args.config or set(given) - {"device", "workers"}:
            raise TnaError("--resume continues a run with its saved config; give only --resume RUN_DIR "
                           "(and optionally --device/--workers)")
        cfg = resume_config(args.resume)
        for k, v in given.items():
            setattr(cfg, k, v)
        return cfg, True
    cfg = TrainConfig()
    if args.config:
        path = Path(args.config)
        cfg = load_config(path.parent if path.name == CONFIG_FILE else path)
    for k, v in given.items():
        setattr(cfg, k, v)
    if not cfg.out:
        raise TnaError("no run folder given; pass --out RUN_DIR")
    return cfg, False


def cmd_train(args) -> int:
    from tna.config import validate
    from tna.train import train

    cfg, resume = _config_from_args(args)
    validate(cfg)
    m = train(cfg, resume=resume)
    if os.environ.get("RANK", "0") == "0":
        extra = f", twin {m['twin_test_accuracy']:.2%}" if "twin_test_accuracy" in m else ""
        val = f"validation {m['val_accuracy']:.2%}, " if "val_accuracy" in m else ""
        print(f"done: {val}test accuracy {m['test_accuracy']:.2%}{extra} -> {cfg.out}/metrics.json")
    return 0


def cmd_eval(args) -> int:
    from torch.utils.data import DataLoader

    from tna.build import load_trained, make_encoder
    from tna.data import load_dataset
    from tna.evaluate import accuracy

    if Path(args.run_dir).is_dir():
        runs.check_writable(args.run_dir)  # before any work
    run = load_trained(args.run_dir)
    cfg = run.config
    model = run.model
    if args.arithmetic == "loihi":  # the deployed arithmetic: Lava fixed point, simulated exactly
        from tna.deployed import loihi_model

        model = loihi_model(run, args.synapses)
    _, test_set, _ = load_dataset(cfg.dataset, T=cfg.T, root=args.data_root or cfg.data_root, train_augment=False)
    acc = accuracy({"base": model}, DataLoader(test_set, batch_size=256), make_encoder(cfg, run.shape))["base"]
    result = {"test_accuracy": acc, "samples": len(test_set), "epoch": run.checkpoint["epoch"],
              "arithmetic": args.arithmetic}
    if args.arithmetic == "loihi":
        result["synapses"] = args.synapses or cfg.synapses
    runs.write_json_atomic(Path(args.run_dir) / runs.eval_file(args.arithmetic, result.get("synapses")), result)
    print(f"{args.run_dir}: test accuracy {acc:.2%} on {len(test_set)} samples (epoch {result['epoch']}, "
          f"{args.arithmetic} arithmetic{', ' + result['synapses'] + ' synapses' if 'synapses' in result else ''})")
    return 0


def cmd_deploy(args) -> int:
    from deploy.pipeline import DEFAULT_SAMPLES, MODES, deploy

    modes = list(MODES) if args.mode == "both" else [args.mode]
    log = lambda m: print(m, flush=True)  # noqa: E731
    target = Path(args.run_dir)
    if target.is_file():  # any standard NIR graph, with the user's inputs
        from deploy.any_graph import deploy_graph

        missing = [o for o, v in (("--inputs INPUTS.h5", args.inputs), ("--out DIR", args.out)) if v is None]
        if missing:
            raise TnaError(f"{target} is a graph file: also give {', '.join(missing)} (the inputs are [N, T, "
                           "*input_shape] in an HDF5 dataset 'input'), and --dt SECONDS unless the graph says its dt")
        if args.synapses or args.data_root:
            raise TnaError("--synapses and --data-root apply to a run folder, not to a graph file")
        result = deploy_graph(target, args.inputs, args.out, args.dt, modes, samples=args.samples,
                              input_scale=args.input_scale, min_agreement=args.min_agreement, log=log)
    else:
        extra = [o for o, v in (("--inputs", args.inputs), ("--dt", args.dt), ("--out", args.out),
                                ("--input-scale", args.input_scale)) if v is not None]
        if extra:
            raise TnaError(f"{', '.join(extra)} apply to a graph file (tna deploy GRAPH.nir ...); a run folder "
                           f"deploys with its own test data, dt and inputs into RUN_DIR/deploy")
        result = deploy(args.run_dir, modes, samples=args.samples or DEFAULT_SAMPLES, min_agreement=args.min_agreement,
                        data_root=args.data_root, synapses=args.synapses, log=log)
    print(f"wrote {result.nir_path.parent / runs.VERIFICATION}")
    if result.failed:
        print("error: below the required agreement: " + "; ".join(result.failed), file=sys.stderr)
        return 3
    return 0


def cmd_report(args) -> int:
    from deploy.report.report import text, write

    r, out = write(args.run_dir, samples=args.samples)
    print(text(r))
    print(f"wrote {out}/report.json, report.txt, " + ", ".join(Path(p).name for p in r["plots"]))
    return 0


def _synapses_option(p) -> None:
    from tna.config import CHOICES

    p.add_argument("--synapses", choices=CHOICES["synapses"],
                   help="fixed point: loihi (8-bit weights x 2^exp per layer, as the chip stores them) | "
                        "wide (any integer conv weight: Lava accepts it, a chip does not); default: the run's")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tna", description=__doc__.split("\n\n")[0] + ".",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(sub).set_defaults(func=cmd_train)
    p = sub.add_parser("eval", help="re-evaluate a run folder on its test set")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data-root", help="override the run's data root")
    p.add_argument("--arithmetic", default="float", choices=("float", "loihi"),
                   help="float: the trained model (default); loihi: exactly as it runs on Lava fixed_pt / Loihi "
                        "(integer weights, thresholds, 12-bit decays)")
    _synapses_option(p)
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("deploy", help="run a trained run or any NIR graph on Lava, verify every spike",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="RUN_DIR: export it to NIR (RUN_DIR/deploy/model.nir + reference.h5), run it on "
                                   "the Lava simulator (floating_pt and/or bit-accurate fixed_pt) and compare every "
                                   "spike of every layer at every time step with the trained model.\n\n"
                                   "GRAPH.nir (any standard NIR graph, e.g. from snnTorch or Norse): run it on the "
                                   "inputs of --inputs at time step --dt, and compare float Lava with the graph's "
                                   "float reference and fixed Lava with the Loihi-exact emulator, every spike; then "
                                   "fixed against float (what quantisation costs). Supported nodes and conventions: "
                                   "docs/consumers.md.\n\nWrites verification.json and verification.txt (in "
                                   "RUN_DIR/deploy or --out). Exit code 3 when the agreement is below "
                                   "--min-agreement.",
                       epilog="examples:\n  tna deploy runs/demo --mode both --samples 16\n"
                              "  tna deploy braille.nir --inputs spikes.h5 --dt 1e-4 --out runs/braille-lava")
    p.add_argument("run_dir", metavar="RUN_DIR|GRAPH.nir")
    p.add_argument("--mode", default="both", choices=("float", "fixed", "both"),
                   help="Lava arithmetic: float (floating_pt), fixed (bit-accurate Loihi), both (default)")
    p.add_argument("--samples", type=int, default=None,
                   help="samples to run and compare (default: 16 test samples of a run; all inputs of a graph)")
    p.add_argument("--min-agreement", type=float, default=None,
                   help="fail (exit 3) below this spike agreement (default: 1.0; a run's float mode 0.9999)")
    g = p.add_argument_group("a graph file (GRAPH.nir)")
    g.add_argument("--inputs", metavar="INPUTS.h5", help="HDF5 with 'input' [N, T, *input_shape] (spikes or analog "
                                                         "values) and optionally 'labels' [N]")
    g.add_argument("--dt", type=float, metavar="SECONDS", help="the time step the graph was made for (NIR stores "
                                                               "none; snnTorch 1e-4, Norse 1e-3); default: the "
                                                               "graph's metadata 'dt', if it has one")
    g.add_argument("--out", metavar="DIR", help="folder for model.nir, reference.h5, lava_*.h5, verification.*")
    g.add_argument("--input-scale", type=float, default=None,
                   help="value of one input integer in fixed point (default: 1 for whole-number inputs, else "
                        "max|x|/255)")
    _synapses_option(p)
    p.add_argument("--data-root", help="override the run's data root")
    p.set_defaults(func=cmd_deploy)
    p = sub.add_parser("report", help="spikes, SynOps, memory, energy estimates and hardware fit of a run",
                       description="Per layer and in total: spike counts, firing rates, synaptic operations "
                                   "(non-zero synapses only), neuron updates, the same-shape ANN's MACs; from the "
                                   "trained model and, where 'tna deploy' ran, from Lava. Weight memory (fp32 vs "
                                   "ternary), energy ESTIMATES under cited models, and whether the model fits each "
                                   "hardware target. Writes RUN_DIR/report/{report.json, report.txt, *.png}.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--samples", type=int, default=16, help="test samples to count over when exporting (default 16)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TnaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; finished epochs are saved: continue with 'tna train --resume RUN_DIR'", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
