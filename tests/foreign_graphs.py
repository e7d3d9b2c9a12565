"""Foreign NIR graphs and inputs: fixtures for `tna deploy GRAPH.nir --inputs INPUTS.h5 --dt SECONDS`.

"Foreign" means not written by our own exporter (deploy/export_nir.py): standard NIR as other people and other
tools write it. The graphs carry NO `dt`/`T` metadata (foreign graphs do not); `RECOMMENDED_DT` says which
discretisation step each one was built for, and what to pass as `--dt`.

Builders (all return a type-checked `nir.NIRGraph`, batch-free types, numpy parameters):

* `if_cnn(seed)` / `if_cnn_trained()`: IF spiking CNN for 2x34x34 DVS frames (hand-built, N-MNIST-like,
  like the NIR paper's CNN task). The trained one loads `tests/data/if_cnn_weights.npz`.
* `lif_mlp(seed)`: LIF MLP, tau in seconds, v_leak 0, r 1, thresholds 1.
* `recurrent_cubalif(seed, dt)`: the NIR paper's Braille topology (12 -> 38 recurrent CubaLIF -> 7), with
  the recurrent layer as a NESTED subgraph named like snnTorch's RSynaptic export (`lif1` holding
  `input`, `lif`, `w_rec`, `output`), or `nested=False`: flat, as snnTorch 1.0.0 + nirtorch 2.6 really emit
  it (`lif1.lif`, `lif1.w_rec`).
* `snntorch_exported(kind)`, `norse_exported(kind)`, `norse_roundtrip()`: graphs from those tools' own
  exporters, with the minimal, documented fixes applied to the exported GRAPH (the tools are not patched).
  `EXPORT_FAILURES` records what the stock exporters did without the fixes (filled when a builder runs).

Inputs: `dvs_inputs(n, T)` (mnist5k-dvs test split, 1 ms 0/1 frames), `spike_inputs(...)` (Bernoulli),
`write_inputs(path, x, labels)` (HDF5: `input` [N, T, *shape] float32, optional `labels` [N] int64).

Numpy + nir + h5py for the hand-built graphs, `reference_run` and the inputs; torch/snntorch/norse only inside
the builders that need them (imported lazily). Checked: the hand-built graphs, `dvs_inputs(n <= 100)` (from
the file) and `write_inputs` also work in the Lava environment (.venv-lava: Python 3.10, numpy 1.26, no torch). Run `python tests/foreign_graphs.py` to print every graph and the export failures.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nir
import numpy as np

from deploy.graph.read import conv2d_np, flatten_subgraphs, pair

DATA_DIR = Path(__file__).resolve().parent / "data"
IF_CNN_WEIGHTS = DATA_DIR / "if_cnn_weights.npz"

# The time step each graph was built for (seconds): what to pass as `tna deploy --dt`.
RECOMMENDED_DT = {
    "if_cnn": 1e-3,
    "if_cnn_trained": 1e-3,
    "lif_mlp": 1e-3,
    "recurrent_cubalif": 1e-4,  # the builder's dt argument
    "snntorch_exported": 1e-4,  # snnTorch's exporter hard-codes dt = 1e-4 (tau = dt / (1 - beta))
    "norse_exported": 1e-3,  # norse.torch.to_nir(..., dt=0.001), after the tau fix below
    "norse_roundtrip": 1e-3,
}

# builder name -> list of "what was tried: exact exception" strings, filled as the export builders run.
EXPORT_FAILURES: dict[str, list[str]] = {}


# ----------------------------------------------------------------------------------------------- helpers
def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _full(shape, value) -> np.ndarray:
    return np.full(tuple(np.atleast_1d(shape)), value, dtype=np.float32)


def roundtrip(graph: nir.NIRGraph, path: str | Path) -> nir.NIRGraph:
    """`nir.write(path, graph)` then `nir.read(path)` with type checking on (the default)."""
    nir.write(str(path), graph)
    return nir.read(str(path))


def describe(graph: nir.NIRGraph, indent: str = "") -> str:
    """Node types (with shapes) and edges, recursing into nested subgraphs."""
    lines = []
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if isinstance(node, nir.NIRGraph):
            lines.append(f"{indent}{name}: NIRGraph (nested)")
            lines.append(describe(node, indent + "    "))
            continue
        shapes = {k: tuple(np.shape(v)) for k, v in vars(node).items()
                  if k not in ("metadata", "input_type", "output_type") and v is not None
                  and not isinstance(v, (str, dict))}
        it = {k: list(map(int, v)) for k, v in (node.input_type or {}).items()} if hasattr(node, "input_type") else {}
        lines.append(f"{indent}{name}: {kind} in={it} {shapes}")
    lines.append(f"{indent}edges: {list(map(tuple, graph.edges))}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- IF CNN
IF_CNN_CHANNELS = (8, 16)


def if_cnn(seed: int = 0, weights: dict | None = None, r: float = 1000.0) -> nir.NIRGraph:
    """Hand-built standard NIR IF CNN for [2, 34, 34] DVS frames (the shape of N-MNIST / our mnist5k-dvs):

    Input [2,34,34] -> Conv2d(2->8, 3x3, padding (1,1), bias) -> IF -> SumPool2d(2) -> Conv2d(8->16, 3x3,
    padding (1,1), bias) -> IF -> SumPool2d(2) -> Flatten(start_dim=0, [16,8,8]) -> Affine(1024->10) -> IF(10)
    -> Output.

    IF parameters are per-neuron arrays of the layer's full shape ([C,H,W] after a conv): r = 1000 (so that
    at dt = 1e-3, v += dt*r*I is v += I), v_threshold 1, v_reset 0. Written by hand in the style of the NIR
    paper's CNN graphs (Conv2d with explicit int padding and `input_shape`, SumPool2d, Flatten(start_dim=0)).

    Without `weights`: random weights (seeded), scaled so that every layer spikes at a moderate rate on
    `dvs_inputs` at dt = 1e-3 (measured: see the module's __main__); they classify at chance.
    `weights`: a dict with conv1.weight/bias, conv2.weight/bias, fc.weight/bias (see `if_cnn_trained`).
    """
    c1, c2 = IF_CNN_CHANNELS
    if weights is None:
        rng = np.random.default_rng(seed)
        weights = {
            "conv1.weight": rng.normal(0.25, 0.5, (c1, 2, 3, 3)),
            "conv1.bias": np.zeros(c1),
            "conv2.weight": rng.normal(0.05, 0.25, (c2, c1, 3, 3)),
            "conv2.bias": np.zeros(c2),
            "fc.weight": rng.normal(0.0, 0.015, (10, c2 * 8 * 8)),
            "fc.bias": np.zeros(10),
        }
    w = {k: _f32(v) for k, v in weights.items()}

    def conv(name, hw):
        return nir.Conv2d(input_shape=hw, weight=w[f"{name}.weight"], stride=(1, 1), padding=(1, 1),
                          dilation=(1, 1), groups=1, bias=w[f"{name}.bias"])

    def if_(shape):
        return nir.IF(r=_full(shape, r), v_threshold=_full(shape, 1.0), v_reset=_full(shape, 0.0))

    def pool():
        return nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))

    nodes = {
        "input": nir.Input(input_type=np.array([2, 34, 34])),
        "conv1": conv("conv1", (34, 34)),
        "if1": if_((c1, 34, 34)),
        "pool1": pool(),
        "conv2": conv("conv2", (17, 17)),
        "if2": if_((c2, 17, 17)),
        "pool2": pool(),
        "flatten": nir.Flatten(input_type={"input": np.array([c2, 8, 8])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=w["fc.weight"], bias=w["fc.bias"]),
        "if3": if_((10,)),
        "output": nir.Output(output_type=np.array([10])),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))


def if_cnn_trained() -> nir.NIRGraph:
    """`if_cnn` with weights trained on mnist5k-dvs (tests/data/if_cnn_weights.npz, made by `train_if_cnn`).

    Trained in plain torch with a surrogate gradient on the frames summed into 30 bins of 10 ms (IF: v += I,
    bias added 10x per bin, spike v > 1, reset to 0); meant to be run at dt = 1e-3 on the 1 ms frames
    (`dvs_inputs(n, T=300)`). The accuracies measured at both resolutions are in the npz (`acc_*`,
    `if_cnn_training_info()`): 20 epochs, 84.8 % on 500 test samples in 30 bins, 82.7 % on 300 test samples at
    T = 300 x 1 ms (torch), 82 % on `dvs_inputs(100)` through this NIR graph with `reference_run` at dt = 1e-3.
    Spike rates at 1 ms: if1 0.3 %, if2 1.6 %, if3 2.5 % per neuron per step; ~74 output spikes per sample,
    6 % of samples give no output spike at all.
    The weights were made by a standalone twin of `train_if_cnn` (same data, model, init, loss, optimiser and
    seed; its evaluation subsets were evenly spaced test samples); rerunning `train_if_cnn()` should give them
    again up to floating-point nondeterminism (not checked)."""
    if not IF_CNN_WEIGHTS.exists():
        raise FileNotFoundError(f"{IF_CNN_WEIGHTS} is missing: run train_if_cnn() to make it")
    with np.load(IF_CNN_WEIGHTS) as z:
        weights = {k: z[k] for k in z.files if "." in k}
    return if_cnn(weights=weights)


def if_cnn_training_info() -> dict:
    """The numbers stored next to the trained weights (accuracies, rates, settings)."""
    with np.load(IF_CNN_WEIGHTS) as z:
        return {k: z[k].tolist() for k in z.files if "." not in k}


def train_if_cnn(epochs: int = 20, bins: int = 30, T: int = 300, seed: int = 0, out: Path = IF_CNN_WEIGHTS,
                 n_eval: int = 300) -> dict:
    """Train `if_cnn`'s weights (plain torch, surrogate gradient, one thread: ~30 s per epoch on 2 cores).

    The 1 ms frames (T=300) are summed into `bins` bins of K = T/bins frames; per bin the IF layers do
    v += conv(x) + K*bias (the same charge as K steps of v += dt*r*I with dt*r = 1), spike v > 1, reset to 0.
    Sum pooling, flatten, Affine, IF; loss: cross entropy of 0.5 * output spike counts, plus penalties that
    keep the conv layers' spike rates in [2 %, 15 %] per bin. Adam 2e-3, cosine schedule, batch 50.
    Then evaluated at the deploy resolution (T steps of 1 ms, no binning) on `n_eval` class-balanced test
    samples, and saved with the accuracies and rates."""
    import torch
    import torch.nn.functional as F

    from tna.data import load_dataset

    torch.manual_seed(seed)
    K = T // bins
    train, test, _ = load_dataset("mnist5k-dvs", T=T)

    def binned(ds):
        out = torch.empty((len(ds.x), bins, 2, 34, 34))
        for i in range(0, len(ds.x), 250):
            out[i:i + 250] = ds.x[i:i + 250].view(-1, bins, K, 2, 34, 34).sum(2).float()
        return out, ds.y.clone()

    xtr, ytr = binned(train)
    xte, yte = binned(test)
    del train

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v > 0).float()

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return g / (1 + 10 * v.abs()) ** 2

    c1, c2 = IF_CNN_CHANNELS
    W = {
        "conv1.weight": torch.randn(c1, 2, 3, 3) * 0.5, "conv1.bias": torch.zeros(c1),
        "conv2.weight": torch.randn(c2, c1, 3, 3) * (2 / (9 * c1)) ** 0.5 * 2, "conv2.bias": torch.zeros(c2),
        "fc.weight": torch.randn(10, c2 * 64) * (2 / (c2 * 64)) ** 0.5 * 2, "fc.bias": torch.zeros(10),
    }
    W = {k: torch.nn.Parameter(v) for k, v in W.items()}

    def run(x, k):
        v1 = v2 = v3 = 0.0
        rates, counts = [0.0, 0.0, 0.0], 0.0
        for t in range(x.shape[1]):
            v1 = v1 + F.conv2d(x[:, t], W["conv1.weight"], padding=1) + k * W["conv1.bias"][:, None, None]
            s1 = Spike.apply(v1 - 1)
            v1 = v1 * (1 - s1)
            v2 = v2 + F.conv2d(F.avg_pool2d(s1, 2) * 4, W["conv2.weight"], padding=1) \
                + k * W["conv2.bias"][:, None, None]
            s2 = Spike.apply(v2 - 1)
            v2 = v2 * (1 - s2)
            v3 = v3 + F.linear((F.avg_pool2d(s2, 2) * 4).flatten(1), W["fc.weight"]) + k * W["fc.bias"]
            s3 = Spike.apply(v3 - 1)
            v3 = v3 * (1 - s3)
            counts = counts + s3
            rates = [r + s.mean() / x.shape[1] for r, s in zip(rates, (s1, s2, s3))]
        return counts, rates

    opt = torch.optim.Adam(W.values(), lr=2e-3)
    steps = (len(xtr) + 49) // 50
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr))
        for b in range(0, len(perm), 50):
            idx = perm[b:b + 50]
            counts, rates = run(xtr[idx], K)
            loss = (F.cross_entropy(counts * 0.5, ytr[idx]) + 2.0 * sum(F.relu(r - 0.15) for r in rates[:2])
                    + 0.5 * F.relu(0.02 - rates[0]) + 0.5 * F.relu(0.02 - rates[1]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    pos = _dvs_positions(n_eval, len(test.x))
    with torch.no_grad():
        c, _ = run(xte[pos], K)
        acc_coarse = float((c.argmax(1) == yte[pos]).float().mean())
        correct, fine_rates = 0, np.zeros(3)
        for b in range(0, n_eval, 100):
            p = pos[b:b + 100]
            c, r = run(test.x[p].float(), 1)
            correct += int((c.argmax(1) == test.y[p]).sum())
            fine_rates += np.array([float(v) for v in r]) * len(p) / n_eval
    info = {f"acc_coarse_{bins}x{K}ms_{n_eval}test": acc_coarse, f"acc_fine_{T}x1ms_{n_eval}test": correct / n_eval,
            "rates_fine": fine_rates, "epochs": epochs, "bins": bins}
    np.savez(out, **{k: v.detach().numpy().astype(np.float32) for k, v in W.items()}, **info)
    return info


# ------------------------------------------------------------------------------------------- LIF MLP
def lif_mlp(seed: int = 0, n_in: int | tuple = 40, hidden: int = 128, n_out: int = 10, tau: float = 2e-2,
            w_scale: float = 1.0) -> nir.NIRGraph:
    """Hand-built standard NIR LIF MLP: Input(n_in) -> Affine -> LIF(hidden) -> Affine -> LIF(n_out) -> Output.

    LIF: tau in seconds (20 ms), r = 1, v_leak = 0, v_threshold = 1, v_reset = 0, all per-neuron arrays.
    With `n_in` a shape such as (2, 34, 34), a Flatten(start_dim=0) follows the Input (for `dvs_inputs`).
    Random weights (seeded) with a positive mean, scaled so both layers spike at a few percent at dt = 1e-3
    on `spike_inputs(rate=0.1)` (n_in = 40) or on `dvs_inputs` (n_in = (2, 34, 34))."""
    rng = np.random.default_rng(seed)
    shape = tuple(np.atleast_1d(n_in))
    flat = int(np.prod(shape))
    nodes = {"input": nir.Input(input_type=np.array(shape))}
    if len(shape) > 1:
        nodes["flatten"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
    # mean input current ~ active inputs per step * mean weight; aim a little above threshold
    active = 4.0 if flat == 40 else max(1.0, 0.0065 * flat)
    w1 = rng.normal(1.5 / active, 2.0 / active, (hidden, flat)) * w_scale
    w2 = rng.normal(0.3, 0.3, (n_out, hidden)) * w_scale

    def lif(n):
        return nir.LIF(tau=_full(n, tau), r=_full(n, 1.0), v_leak=_full(n, 0.0), v_threshold=_full(n, 1.0),
                       v_reset=_full(n, 0.0))

    nodes |= {
        "fc1": nir.Affine(weight=_f32(w1), bias=np.zeros(hidden, np.float32)),
        "lif1": lif(hidden),
        "fc2": nir.Affine(weight=_f32(w2), bias=np.zeros(n_out, np.float32)),
        "lif2": lif(n_out),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))


# ------------------------------------------------------------------------------- recurrent CubaLIF
def recurrent_cubalif(seed: int = 0, dt: float = 1e-4, nested: bool = True, readout: str = "cubalif",
                      n_in: int = 12, hidden: int = 38, n_out: int = 7, tau_syn: float = 5e-3,
                      tau_mem: float = 2e-2, rec_bias: bool = False) -> nir.NIRGraph:
    """The NIR paper's Braille network shape: Input(12) -> Linear(12->38) -> recurrent CubaLIF(38) ->
    Linear(38->7) -> CubaLIF(7) (or CubaLI(7) with readout="cubali") -> Output.

    The recurrent layer is written as snnTorch 1.0.0 writes an RSynaptic layer (`_extract_snntorch_module`):
    a subgraph with nodes `input` (Input [38]), `lif` (CubaLIF), `w_rec` (Affine 38->38: nn.Linear with its
    bias; zero here unless rec_bias) and `output` (Output [38]), edges input->lif, lif->w_rec, w_rec->lif,
    lif->output.
      nested=True: that subgraph is ONE node `lif1` (a nir.NIRGraph) of the outer graph; outer edges name the
        subgraph itself: ("fc1", "lif1"), ("lif1", "fc2") (nir 1.0.8 rejects edges to "lif1.input").
      nested=False: flat, the way snnTorch's `export_to_nir` (through nirtorch 2.6) really emits it: nodes
        `lif1.lif`, `lif1.w_rec` in the outer graph, edges ("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"),
        ("lif1.w_rec", "lif1.lif"), ("lif1.lif", "fc2"); the subgraph's Input/Output are dropped.
    Parameters: tau_syn 5 ms, tau_mem 20 ms (seconds), r 1, w_in 1, v_leak 0, v_threshold 1, v_reset 0,
    per-neuron arrays; meant for `dt` (default 1e-4, as the NIR paper's Braille graphs). Weights are seeded and
    scaled so the recurrent layer spikes at a few percent on `spike_inputs(n, 256, 12, rate=0.05)`. The input
    weights are scaled with dt/1e-4 kept in mind: the synaptic current is a time average, so the rates hardly
    depend on dt."""
    if readout not in ("cubalif", "cubali"):
        raise ValueError(f"readout must be 'cubalif' or 'cubali', got {readout!r}")
    rng = np.random.default_rng(seed)
    gain = (1e-4 / dt) ** 0.5  # keeps the rates in range for dt from 1e-4 to 1e-3
    w_in = rng.normal(12.0, 8.0, (hidden, n_in)) * gain
    w_rec = rng.normal(0.0, 3.0, (hidden, hidden)) * gain
    np.fill_diagonal(w_rec, 0.0)
    b_rec = rng.normal(0.0, 0.5, hidden) * gain if rec_bias else np.zeros(hidden)
    w_out = rng.normal(4.0, 4.0, (n_out, hidden)) * gain

    def cuba(n, spiking=True):
        p = dict(tau_syn=_full(n, tau_syn), tau_mem=_full(n, tau_mem), r=_full(n, 1.0), v_leak=_full(n, 0.0),
                 w_in=_full(n, 1.0))
        return nir.CubaLIF(**p, v_threshold=_full(n, 1.0), v_reset=_full(n, 0.0)) if spiking else nir.CubaLI(**p)

    rec_nodes = {"lif": cuba(hidden), "w_rec": nir.Affine(weight=_f32(w_rec), bias=_f32(b_rec))}
    nodes = {"input": nir.Input(input_type=np.array([n_in])), "fc1": nir.Linear(weight=_f32(w_in))}
    if nested:
        sub = nir.NIRGraph(
            nodes={"input": nir.Input(input_type=np.array([hidden])), **rec_nodes,
                   "output": nir.Output(output_type=np.array([hidden]))},
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
        nodes["lif1"] = sub
        rec_edges = [("fc1", "lif1"), ("lif1", "fc2")]
    else:
        nodes["lif1.lif"] = rec_nodes["lif"]
        nodes["lif1.w_rec"] = rec_nodes["w_rec"]
        rec_edges = [("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"), ("lif1.w_rec", "lif1.lif"),
                     ("lif1.lif", "fc2")]
    nodes |= {"fc2": nir.Linear(weight=_f32(w_out)), "lif2": cuba(n_out, spiking=readout == "cubalif"),
              "output": nir.Output(output_type=np.array([n_out]))}
    edges = [("input", "fc1")] + rec_edges + [("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


# -------------------------------------------------------------------- graphs from other tools' exporters
def _record(builder: str, what: str, exc: BaseException) -> None:
    EXPORT_FAILURES.setdefault(builder, [])
    msg = f"{what}: {type(exc).__name__}: {exc}"
    if msg not in EXPORT_FAILURES[builder]:
        EXPORT_FAILURES[builder].append(msg)


def _numpy_params(node: nir.NIRNode) -> None:
    """torch tensors / numpy scalars in a node -> float32 numpy arrays (in place)."""
    for k, v in list(vars(node).items()):
        if k in ("metadata", "input_type", "output_type") or v is None or isinstance(v, (dict, str, tuple, int)):
            continue
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        if isinstance(v, (np.ndarray, np.generic, float)):
            setattr(node, k, np.asarray(v, dtype=np.float32))


_NEURON_PARAMS = ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in")


def _broadcast_neuron(node: nir.NIRNode, n: int) -> None:
    """Scalar (0-d) neuron parameters -> per-neuron arrays of length n, and the types that follow from them."""
    for k in _NEURON_PARAMS:
        v = getattr(node, k, None)
        if v is not None:
            setattr(node, k, np.broadcast_to(np.asarray(v, np.float32), (n,)).copy())
    node.input_type = {"input": np.array([n])}
    node.output_type = {"output": np.array([n])}


def _fix_flat_graph(graph: nir.NIRGraph, tau_factor: float = 1.0) -> nir.NIRGraph:
    """The post-export fixes shared by the snnTorch and Norse MLP exports: numpy parameters, per-neuron
    parameters sized by the preceding Affine/Linear, optional tau rescale, batch-free Input/Output, then a
    fresh type-checked NIRGraph."""
    g = copy.deepcopy(graph)
    preds = {}
    for a, b in g.edges:
        preds.setdefault(b, []).append(a)
    for node in g.nodes.values():
        if node is not None:
            _numpy_params(node)
    for name, node in g.nodes.items():
        if isinstance(node, (nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI, nir.IF)):
            widths = [g.nodes[p].weight.shape[0] for p in preds.get(name, [])
                      if isinstance(g.nodes[p], (nir.Affine, nir.Linear))]
            if not widths:
                raise ValueError(f"cannot size neuron node {name!r}: no Affine/Linear before it")
            for k in ("tau", "tau_mem", "tau_syn"):
                if getattr(node, k, None) is not None and tau_factor != 1.0:
                    setattr(node, k, np.asarray(getattr(node, k), np.float32) * np.float32(tau_factor))
            _broadcast_neuron(node, widths[0])
    for name, node in g.nodes.items():
        if isinstance(node, nir.Input):
            shape = np.asarray(node.input_type["input"])
            if len(shape) > 1 and shape[0] == 1:  # the batch dimension of the sample
                g.nodes[name] = nir.Input(input_type=shape[1:])
    for name, node in g.nodes.items():
        if isinstance(node, nir.Output):
            src = g.nodes[preds[name][0]]
            g.nodes[name] = nir.Output(output_type=np.asarray(src.output_type["output"]))
    return nir.NIRGraph(nodes=dict(g.nodes), edges=[tuple(e) for e in g.edges])


def _snntorch_net(kind: str, seed: int):
    import snntorch as snn
    import torch

    torch.manual_seed(seed)
    if kind == "leaky_mlp":
        net = torch.nn.Sequential(torch.nn.Linear(40, 64), snn.Leaky(beta=0.9, init_hidden=True),
                                  torch.nn.Linear(64, 10), snn.Leaky(beta=0.9, init_hidden=True, output=True))
        with torch.no_grad():  # weights that make both layers spike on spike_inputs(rate=0.1) at dt 1e-4
            net[0].weight.normal_(0.04, 0.08)
            net[2].weight.normal_(0.02, 0.05)
        return net, 40

    class RSynNet(torch.nn.Module):
        """The NIR paper's Braille net in snnTorch (paper/03_rnn/generate_rnn_nir_graph.py), smaller init."""

        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(12, 38)
            self.lif1 = snn.RSynaptic(alpha=0.98, beta=0.995, linear_features=38, init_hidden=True,
                                      reset_mechanism="zero")
            self.fc2 = torch.nn.Linear(38, 7)
            self.lif2 = snn.Synaptic(alpha=0.98, beta=0.995, init_hidden=True, output=True,
                                     reset_mechanism="zero")

        def forward(self, x):
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    net = RSynNet()
    with torch.no_grad():
        net.fc1.weight.normal_(0.001, 0.001)
        net.lif1.recurrent.weight.normal_(0.0, 0.0005)
        net.fc2.weight.normal_(0.0004, 0.0008)
        for lin in (net.fc1, net.lif1.recurrent, net.fc2):  # default biases (+-0.29) x w_in*r = 1e4: all spike
            lin.bias.normal_(0.0, 2e-4)
    return net, 12


def snntorch_exported(kind: str = "leaky_mlp", seed: int = 0) -> nir.NIRGraph:
    """A graph from snnTorch 1.0.0's own exporter, `snntorch.export_nir.export_to_nir(net, sample)`.

    kind "leaky_mlp": Linear(40,64) -> Leaky -> Linear(64,10) -> Leaky; "rsynaptic": the Braille net,
    Linear(12,38) -> RSynaptic(38, all-to-all) -> Linear(38,7) -> Synaptic.
    Stock export fails in nir 1.0.8's `infer_types` (recorded in EXPORT_FAILURES): with a [1, F] sample the
    Input keeps the batch dim (`input.output: [[1 F]] -> 0.input: [[F]]`); with `ignore_dims=[0]` the Leaky /
    Synaptic layers (scalar beta/threshold -> 0-d parameters) have an empty type (`... -> 1.input: []`).
    Fix (graph only): run the same extraction the exporter runs (nirtorch.extract_nir_graph with snnTorch's
    module map, ignore_dims=[0]) without its final infer_types, broadcast the 0-d neuron parameters to the
    layer width, rebuild with type checking. Parameters keep snnTorch's convention for dt = 1e-4:
    tau = dt/(1-beta), r = tau/dt (LIF), tau_syn = dt/(1-alpha), w_in = tau_syn/dt (CubaLIF)."""
    if kind not in ("leaky_mlp", "rsynaptic"):
        raise ValueError(f"kind must be 'leaky_mlp' or 'rsynaptic', got {kind!r}")
    import warnings

    import nirtorch
    import snntorch as snn
    import torch
    from snntorch import export_nir

    net, n_in = _snntorch_net(kind, seed)
    builder = f"snntorch_exported({kind})"
    for kwargs in ({}, {"ignore_dims": [0]}):
        try:
            graph = export_nir.export_to_nir(net, torch.zeros(1, n_in), **kwargs)
            return graph  # would mean the stock export works now
        except Exception as e:  # noqa: BLE001 - recording the tool's failure is the point
            _record(builder, f"export_to_nir(net, torch.zeros(1, {n_in}), {kwargs})", e)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = nirtorch.extract_nir_graph(net, export_nir._extract_snntorch_module, torch.zeros(1, n_in),
                                         model_name="snntorch", ignore_submodules_of=[snn.RLeaky, snn.RSynaptic],
                                         ignore_dims=[0])
    return _fix_flat_graph(raw)


def norse_exported(kind: str = "lifbox", seed: int = 0, dt: float = 1e-3) -> nir.NIRGraph:
    """A graph from Norse 1.1.0's own exporter, `norse.torch.to_nir(model, sample, dt)`:
    SequentialState(Linear(40,64), cell, Linear(64,10), cell) with cell = LIFBoxCell (kind "lifbox": exports
    as nir.LIF) or LIFCell (kind "lif": Norse's LIF has a synaptic current, exports as nir.CubaLIF), with
    default (scalar) parameters: tau_mem 10 ms (tau_syn 5 ms), v_th 1. Weights scaled to spike on
    `spike_inputs(rate=0.1)`.

    Stock export (recorded in EXPORT_FAILURES): works for SequentialState (a plain nn.Sequential fails in the
    forward pass: 'linear(): ... must be Tensor, not tuple'), but the graph cannot be written: parameters are
    torch tensors and 0-d (`nir.write`: "Scalar datasets don't support chunk/filter options"), neuron types
    are empty, and tau = dt * (true tau) (exported `dt / tau_mem_inv`).
    Fix (graph only): tensors -> numpy, 0-d parameters -> per-neuron arrays, tau /= dt, batch-free types,
    and for kind "lif" w_in = tau_syn/dt: Norse's LIFCell adds its input to the synaptic current as a jump
    (i += x), which NIR's forward-Euler CubaLIF (I += dt/tau_syn*(w_in*x - I)) reproduces only with
    w_in = tau_syn/dt (snnTorch's exporter writes exactly that); Norse writes w_in = 1 (5x too weak here).
    With I updated before v in a step (as Norse does), the two then give the same current exactly.
    Pass the sample WITHOUT a batch dimension (with one, the Input/Output keep [1, F])."""
    if kind not in ("lifbox", "lif"):
        raise ValueError(f"kind must be 'lifbox' or 'lif', got {kind!r}")
    import tempfile

    import torch
    import norse.torch as norse

    torch.manual_seed(seed)
    cell = norse.LIFBoxCell if kind == "lifbox" else norse.LIFCell
    model = norse.SequentialState(torch.nn.Linear(40, 64), cell(), torch.nn.Linear(64, 10), cell())
    with torch.no_grad():
        if kind == "lif":  # the current jumps by the input: effective drive ~ tau_syn/dt times larger
            model[0].weight.normal_(0.08, 0.15)
            model[2].weight.normal_(0.06, 0.1)
        else:
            model[0].weight.normal_(0.35, 0.7)
            model[2].weight.normal_(0.3, 0.5)
    builder = f"norse_exported({kind})"
    try:
        torch.nn.Sequential(*model)(torch.zeros(1, 40))
    except Exception as e:  # noqa: BLE001
        _record(builder, "plain nn.Sequential of the same modules, forward", e)
    raw = norse.to_nir(model, torch.zeros(40), dt=dt)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            nir.write(f"{tmp}/g.nir", raw)
        except Exception as e:  # noqa: BLE001
            _record(builder, "nir.write(stock to_nir graph)", e)
    graph = _fix_flat_graph(raw, tau_factor=1.0 / dt)
    for node in graph.nodes.values():
        if isinstance(node, nir.CubaLIF):  # Norse's LIFCell: i += x (a jump), NIR: I += dt/tau_syn*(w_in*x - I)
            node.w_in = (node.tau_syn / np.float32(dt)).astype(np.float32)
    return graph


def norse_roundtrip(seed: int = 0, dt: float = 1e-3) -> nir.NIRGraph:
    """`lif_mlp(seed)` (standard NIR) -> `norse.torch.from_nir(graph, dt)` -> `norse.torch.to_nir(model,
    sample)` -> back to a standard graph. Stock to_nir on the imported GraphExecutor returns a graph whose
    `input`/`output` nodes are None (the importer made them nn.Identity), often a self-loop edge
    ('output', 'output') (nirtorch removes one of its two self-loops, seemingly in set order), tau = dt/tau_mem_inv (dt times too small), torch tensors. Fix: Input/Output nodes
    from the Affine/LIF shapes, drop the self-loop, tau /= dt, numpy; the result equals `lif_mlp(seed)`'s parameters (checked in the tests)."""
    import tempfile
    import warnings

    import torch
    import norse.torch as norse

    src = lif_mlp(seed)
    builder = "norse_roundtrip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = norse.from_nir(src, dt=dt)
        raw = norse.to_nir(model, torch.zeros(40), dt=dt)
    bad = [k for k, v in raw.nodes.items() if v is None]
    if bad:
        _record(builder, "to_nir(from_nir(lif_mlp()))", ValueError(f"nodes {bad} are None"))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            nir.write(f"{tmp}/g.nir", raw)
        except Exception as e:  # noqa: BLE001
            _record(builder, "nir.write(stock to_nir graph)", e)
    nodes = dict(raw.nodes)
    for k in bad:  # the importer's Identity modules: give them back their Input/Output role
        nodes[k] = nir.Input(input_type=np.array([0])) if k == "input" else nir.Output(output_type=np.array([0]))
    nodes["input"] = nir.Input(input_type=np.array([src.nodes["fc1"].weight.shape[1]]))
    loops = [tuple(e) for e in raw.edges if e[0] == e[1]]
    if loops:
        _record(builder, "to_nir(from_nir(lif_mlp())) edges", ValueError(f"self-loop edges {loops}"))
    fixed = nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in raw.edges if e[0] != e[1]], type_check=False)
    return _fix_flat_graph(fixed, tau_factor=1.0 / dt)


# ------------------------------------------------------------------ a plain reference, for rate checks
def _conv2d(x: np.ndarray, node: nir.Conv2d) -> np.ndarray:
    w, b = np.asarray(node.weight, np.float64), np.asarray(node.bias, np.float64)
    return conv2d_np(x, w, pair(node.stride, "stride", "conv"), pair(node.padding, "padding", "conv")) + \
        b[None, :, None, None]


def _sumpool(x: np.ndarray, node: nir.SumPool2d) -> np.ndarray:
    k = pair(node.kernel_size, "kernel_size", "pool")
    return conv2d_np(x, np.ones((x.shape[1], 1) + k), pair(node.stride, "stride", "pool"), groups=x.shape[1])


def reference_rates(graph: nir.NIRGraph, x: np.ndarray, dt: float) -> dict[str, float]:
    """Mean spike probability per neuron per step of every spiking node (see `reference_run`)."""
    return reference_run(graph, x, dt)[0]


def reference_run(graph: nir.NIRGraph, x: np.ndarray, dt: float) -> tuple[dict[str, float], np.ndarray]:
    """(rates, counts): the mean spike probability per neuron per step of every spiking node, and the sum
    over steps of what reaches the Output node(s) [N, ...], from a plain forward-Euler run
    (numpy, float64) of `x` [N, T, *input_shape]. For CALIBRATING these fixtures, not a reference for the
    mapper's exact spikes: feed-forward edges carry no delay, a recurrent edge reads the previous step.
    IF: v += dt*r*I; LIF: v += dt/tau*(v_leak - v + r*I); CubaLIF/CubaLI: I_syn += dt/tau_syn*(w_in*x - I_syn)
    first, then v += dt/tau_mem*(v_leak - v + r*I_syn); spike v > v_threshold, v := v_reset."""
    nodes, edges = flatten_subgraphs(dict(graph.nodes), [tuple(e) for e in graph.edges])
    succ: dict[str, list] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    order, seen = [], set()

    def visit(k):
        seen.add(k)
        for b in succ.get(k, []):
            if b not in seen:
                visit(b)
        order.append(k)

    for k, node in nodes.items():
        if isinstance(node, nir.Input) and k not in seen:
            visit(k)
    order.reverse()
    pos = {k: i for i, k in enumerate(order)}
    preds: dict[str, list] = {}
    for a, b in edges:
        preds.setdefault(b, []).append((a, pos[a] >= pos[b]))  # True: a back (recurrent) edge
    n_batch, T = x.shape[:2]
    out: dict[str, np.ndarray] = {}
    state: dict[str, dict] = {}
    spikes: dict[str, float] = {}
    out_sums: dict[str, np.ndarray] = {}
    for t in range(T):
        prev = out
        out = {}
        for k in order:
            node = nodes[k]
            if isinstance(node, nir.Input) and not preds.get(k):
                out[k] = x[:, t].astype(np.float64)
                continue
            i = sum(prev.get(a, 0.0) if back else out[a] for a, back in preds[k])
            if isinstance(node, (nir.Input, nir.Output)):
                y = i
            elif isinstance(node, nir.Flatten):
                y = np.asarray(i).reshape(n_batch, -1)
            elif isinstance(node, nir.Affine):
                y = np.asarray(i) @ np.asarray(node.weight, np.float64).T + np.asarray(node.bias)
            elif isinstance(node, nir.Linear):
                y = np.asarray(i) @ np.asarray(node.weight, np.float64).T
            elif isinstance(node, nir.Conv2d):
                y = _conv2d(np.asarray(i), node)
            elif isinstance(node, nir.SumPool2d):
                y = _sumpool(np.asarray(i), node)
            elif isinstance(node, (nir.IF, nir.LIF, nir.CubaLIF, nir.CubaLI, nir.LI)):
                st = state.setdefault(k, {"v": 0.0, "i": 0.0})
                if isinstance(node, nir.IF):
                    st["v"] = st["v"] + dt * node.r * i
                elif isinstance(node, (nir.LIF, nir.LI)):
                    st["v"] = st["v"] + dt / node.tau * (node.v_leak - st["v"] + node.r * i)
                else:
                    st["i"] = st["i"] + dt / node.tau_syn * (node.w_in * i - st["i"])
                    st["v"] = st["v"] + dt / node.tau_mem * (node.v_leak - st["v"] + node.r * st["i"])
                if isinstance(node, (nir.LI, nir.CubaLI)):
                    y = st["v"]
                else:
                    s = st["v"] > node.v_threshold
                    v_reset = 0.0 if node.v_reset is None else node.v_reset
                    st["v"] = np.where(s, v_reset, st["v"])
                    y = s.astype(np.float64)
                    spikes[k] = spikes.get(k, 0.0) + y.mean() / T
            else:
                raise NotImplementedError(type(node).__name__)
            out[k] = y
            if isinstance(graph.nodes.get(k), nir.Output):  # the outer graph's, not a subgraph's
                out_sums[k] = out_sums.get(k, 0.0) + np.asarray(y)
    return spikes, sum(out_sums.values())


# ------------------------------------------------------------------------------------------------ inputs
def _dvs_positions(n: int, n_test: int = 1000, n_classes: int = 10) -> np.ndarray:
    """Positions in the (class-sorted) test split: class 0's first, class 1's first, ..., class 0's second, ...
    so every prefix is class-balanced and dvs_inputs(n) is dvs_inputs(m)[:n] for n < m."""
    per = n_test // n_classes
    i = np.arange(n)
    return (i % n_classes) * per + i // n_classes


DVS_FILE = DATA_DIR / "dvs_test_frames_T300.npz"


def dvs_inputs(n: int, T: int = 300, *, source: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(x float32 [n, T, 2, 34, 34] of 0/1, labels int64 [n]) from the mnist5k-dvs TEST split.

    T = 300 bins over the 300 ms recording = 1 ms frames (feed at dt = 1e-3). Samples are taken class by
    class in turn (labels 0, 1, ..., 9, 0, 1, ...), so any n >= 10 covers every class equally and a smaller n
    gives a prefix of a larger one. Activity: ~0.5-0.65 % of the 2x34x34 pixels per 1 ms frame (~12-15
    events per frame, both polarities alike; rising over each 100 ms saccade).

    source "file": tests/data/dvs_test_frames_T300.npz (the first 20 samples, bit-packed; needs neither torch
    nor the dataset cache: usable from the Lava environment). "events": rebuild just those recordings' frames
    from the cached events with the dataset's own functions (`mnist5k_dvs.to_frames`; identical frames, checked
    by test). "dataset": `tna.data.load_dataset("mnist5k-dvs", T=T)` (reads all 5000 x T frames: ~15 s and
    3.5 GB at T=300). "auto": the file when it covers (n, T), else "events"."""
    if source == "auto":
        source = "file" if T == 300 and DVS_FILE.exists() and n <= _dvs_file_size() else "events"
    if source == "file":
        with np.load(DVS_FILE) as z:
            shape = tuple(z["shape"])
            if T != shape[1] or n > shape[0]:
                raise ValueError(f"{DVS_FILE.name} holds {shape[0]} samples at T={shape[1]}; asked n={n}, T={T}")
            bits = np.unpackbits(z["packed"], count=int(np.prod(shape))).reshape(shape)
            return bits[:n].astype(np.float32), z["labels"][:n].astype(np.int64)
    from tna.data import mnist5k

    _, labels = mnist5k.digits()
    _, test_idx = mnist5k.split(labels)
    pos = _dvs_positions(n, len(test_idx))
    if source == "dataset":
        from tna.data import load_dataset

        _, test, _ = load_dataset("mnist5k-dvs", T=T)
        x = np.stack([test[int(i)][0].numpy() for i in pos]).astype(np.float32)
        return x, np.array([int(test[int(i)][1]) for i in pos], np.int64)
    if source != "events":
        raise ValueError(f"source must be auto, file, events or dataset, got {source!r}")
    from tna.data import default_cache_dir, mnist5k_dvs

    store = mnist5k_dvs.cached_events(default_cache_dir())
    idx = test_idx[pos]
    x = np.stack([mnist5k_dvs.to_frames(mnist5k_dvs.recording(store, int(i)), T) for i in idx]).astype(np.float32)
    return x, labels[idx].astype(np.int64)


def _dvs_file_size() -> int:
    with np.load(DVS_FILE) as z:
        return int(z["shape"][0])


def make_dvs_file(n: int = 20) -> Path:
    """Write tests/data/dvs_test_frames_T300.npz from the dataset (source "events")."""
    x, y = dvs_inputs(n, 300, source="events")
    DATA_DIR.mkdir(exist_ok=True)
    np.savez_compressed(DVS_FILE, packed=np.packbits(x.astype(np.uint8).ravel()), shape=np.array(x.shape),
                        labels=y)
    return DVS_FILE


def spike_inputs(n: int, T: int, features: int | tuple = 12, rate: float = 0.05, seed: int = 0) -> np.ndarray:
    """Bernoulli spikes, float32 [n, T, *features] of 0/1, probability `rate` per element per step."""
    shape = (n, T) + tuple(np.atleast_1d(features))
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


def write_inputs(path: str | Path, x: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """HDF5 for `tna deploy --inputs`: dataset `input` [N, T, *input_shape] float32, optional `labels` [N] int64."""
    import h5py

    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 3:
        raise ValueError(f"inputs must be [N, T, *input_shape], got shape {x.shape}")
    path = Path(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("input", data=x, compression="gzip" if x.size > 1 << 16 else None)
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (x.shape[0],):
                raise ValueError(f"labels must be [{x.shape[0]}], got {labels.shape}")
            f.create_dataset("labels", data=labels)
    return path


BUILDERS = {
    "if_cnn": if_cnn,
    "if_cnn_trained": if_cnn_trained,
    "lif_mlp": lif_mlp,
    "recurrent_cubalif": recurrent_cubalif,
    "recurrent_cubalif_flat": lambda: recurrent_cubalif(nested=False),
    "snntorch_leaky_mlp": lambda: snntorch_exported("leaky_mlp"),
    "snntorch_rsynaptic": lambda: snntorch_exported("rsynaptic"),
    "norse_lifbox": lambda: norse_exported("lifbox"),
    "norse_lif": lambda: norse_exported("lif"),
    "norse_roundtrip": norse_roundtrip,
}


if __name__ == "__main__":
    for name, build in BUILDERS.items():
        print(f"=== {name}")
        try:
            print(describe(build()))
        except FileNotFoundError as e:
            print("missing:", e)
    print("=== stock export failures")
    for k, v in EXPORT_FAILURES.items():
        for m in v:
            print(f"{k}: {m}")


def norse_roundtrip_of(graph: nir.NIRGraph, dt: float = 1e-3) -> nir.NIRGraph:
    """Any graph Norse imports (e.g. our `export_nir.py --consumer norse` graph, a CNN) -> `norse.from_nir`
    -> `norse.to_nir` -> a standard graph again, with the documented repairs of Norse 1.1.0's stock export:
    nodes it returns as None (Input, Output, Flatten: the importer made them torch modules it cannot export)
    are restored from the source graph under the same names (they carry no parameters); Conv2d gets back its
    input_shape (None in the export); tau /= dt (exported as dt/tau_mem_inv); self-loop edges dropped;
    torch tensors -> numpy. Every weight, bias, threshold and time constant is Norse's own export."""
    import warnings

    import norse.torch as norse
    import torch

    from deploy.graph.read import read

    src = read(graph)
    shape = src.nodes[src.inputs[0]].shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = norse.from_nir(graph, dt=dt)
        raw = norse.to_nir(model, torch.zeros(shape), dt=dt)
    nodes = {}
    for name, node in raw.nodes.items():
        if node is None:
            nodes[name] = graph.nodes[name]
            continue
        node = copy.deepcopy(node)
        _numpy_params(node)
        if isinstance(node, nir.Conv2d):
            h, w = src.nodes[name].in_shape[1:]
            node = nir.Conv2d(input_shape=(h, w), weight=node.weight, stride=node.stride, padding=node.padding,
                              dilation=node.dilation, groups=int(np.asarray(node.groups)), bias=node.bias)
        if isinstance(node, (nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI)):
            for k in ("tau", "tau_mem", "tau_syn"):
                if getattr(node, k, None) is not None:
                    setattr(node, k, np.asarray(getattr(node, k), np.float32) / np.float32(dt))
            node = type(node)(**{k: np.broadcast_to(np.asarray(getattr(node, k), np.float32),
                                                    src.nodes[name].shape).copy()
                                 for k in node.__dataclass_fields__ if k not in ("input_type", "output_type", "metadata")
                                 and getattr(node, k, None) is not None})
        nodes[name] = node
    edges = [tuple(e) for e in raw.edges if e[0] != e[1]]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(raw.metadata or {}))  # Norse writes none
