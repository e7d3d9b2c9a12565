"""Our graphs in other simulators: `deploy/export_nir.py --consumer norse|snntorch` writes a graph the
released importer (norse 1.1.0 `norse.torch.from_nir`, snnTorch 1.0.0 `import_from_nir`) runs
unchanged, predicting the trained model's class; Norse, whose discretisation is ours at our dt, gives
the same spikes in every layer."""

import subprocess
import sys
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from deploy.graph.consumers import CONSUMERS, for_consumer, run_in_consumer
from deploy.graph.from_model import lif_nodes, model_to_nir
from test_nir_export import model_spikes, trained_like
from tna.errors import TnaError
from tna.models import build_model

ROOT = Path(__file__).resolve().parents[1]
T = 4
MODELS = [("convnet", (1, 28, 28), 0.5), ("vgg11", (3, 32, 32), 0.125), ("resnet20", (3, 32, 32), 0.125)]


def _inputs(shape, n=6, seed=1):
    torch.manual_seed(seed)
    return (torch.rand(n, *shape) * 2).unsqueeze(0).expand(T, n, *shape).contiguous()


def _written(tmp_path, graph, consumer):
    """The consumer's graph as a file, read back as the consumer's user would (nir.read, type-checked)."""
    path = tmp_path / f"model-{consumer}.nir"
    nir.write(path, for_consumer(graph, consumer))
    return nir.read(path)


def _stock_import(graph, consumer):
    """The released importer, called exactly as its docs say (no tna code in between)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if consumer == "norse":
            import norse.torch

            return norse.torch.from_nir(graph, dt=graph.metadata["dt"])
        from snntorch.import_nir import import_from_nir

        return import_from_nir(graph)


@pytest.mark.parametrize("consumer", list(CONSUMERS))
@pytest.mark.parametrize("name,shape,width", MODELS)
def test_consumer_runs_our_graph_as_trained(tmp_path, capfd, name, shape, width, consumer):
    model = trained_like(name, shape, width)
    graph = model_to_nir(model, shape, T=T, dt=1e-3, encoding="direct", input_scale=1 / 255)
    g = _written(tmp_path, graph, consumer)
    # stock import: every spiking layer becomes the consumer's own neuron module
    net = _stock_import(g, consumer)
    capfd.readouterr()  # snnTorch prints its threshold "hack" per layer
    cls = "LIFBoxCell" if consumer == "norse" else "Leaky"
    assert sum(type(m).__name__ == cls for m in net.modules()) == len(lif_nodes(graph))
    x = _inputs(shape)
    ref, logits = model_spikes(model, x)
    spikes, summed = run_in_consumer(g, consumer, x)
    assert set(spikes) == set(ref)
    assert 0.01 < np.mean([s.mean().item() for s in ref.values()]) < 0.9  # not silent, not saturated
    # the readout: the Output summed over the T steps is T x the logits; same class
    assert torch.allclose(summed / T, logits, atol=1e-4)
    assert torch.equal(summed.argmax(1), logits.argmax(1))
    if consumer == "norse":  # our discretisation at our dt: the same spikes, bit for bit
        for k in ref:
            assert torch.equal(spikes[k], ref[k]), k
    else:
        # snnTorch steps m = beta*m + x against v_th/decay, i.e. ours in units of v/decay but rounded
        # once where ours rounds twice (fl(v + fl(decay*(x - v)))), so a spike may flip where v lands
        # within float32 rounding of the threshold. Measured: every spike equal, here, on 1000 test
        # samples of trained convnet, vgg11, resnet20 and convnet1d runs (0 of 12.8M-577M spikes
        # differ, docs/results/consumers.md), and at decays 1/3, 1/5, 2/3 (200 samples, T 8); the
        # bound allows one flip in 10^4.
        equal = sum(int((spikes[k] == ref[k]).sum()) for k in ref)
        assert equal / sum(ref[k].numel() for k in ref) >= 0.9999


def test_graph_conventions_per_consumer():
    model = trained_like("vgg11", (3, 32, 32), 0.125)
    graph = model_to_nir(model, (3, 32, 32), T=T, dt=1e-3, encoding="direct", input_scale=1 / 255)
    for consumer, dt in (("norse", 1e-3), ("snntorch", 1e-4)):
        g = for_consumer(graph, consumer)
        assert not any(isinstance(n, nir.I) for n in g.nodes.values())  # the readout is metadata
        assert ("classifier", "output") in g.edges
        m = g.metadata
        assert (m["consumer"], m["readout"], m["T"], m["dt"]) == (consumer, "sum over steps", T, dt)
        assert m["source_dt"] == 1e-3
        assert m["decay"] == 0.5 and m["input_scale"] == 1 / 255 and m["encoding"] == "direct"
        lif = next(n for n in g.nodes.values() if isinstance(n, nir.LIF))
        assert np.all(lif.r == 1) and np.all(lif.v_reset == 0) and np.all(lif.v_threshold == 1)
        assert np.all(np.float32(dt) / lif.tau == np.float32(0.5))  # the decay, exactly, at the consumer's dt
    assert "readout" in graph.nodes  # the input graph is untouched
    norse_g, snn_g = for_consumer(graph, "norse"), for_consumer(graph, "snntorch")
    pools = [k for k, n in graph.nodes.items() if isinstance(n, nir.AvgPool2d)]
    assert pools and all(isinstance(norse_g.nodes[k], nir.SumPool2d) for k in pools)
    assert all(isinstance(snn_g.nodes[k], nir.AvgPool2d) for k in pools)
    # Norse: the 1/(2x2) of each average pool is folded into the next conv (or the classifier)
    for s, t in graph.edges:
        if s in pools and isinstance(graph.nodes[t], nir.Conv2d):
            assert np.array_equal(norse_g.nodes[t].weight, graph.nodes[t].weight / 4)
            assert np.array_equal(norse_g.nodes[t].bias, graph.nodes[t].bias)


def test_norse_resnet_projection_shortcuts_become_chains():
    """Norse's importer runs nodes depth-first: a 1x1-conv shortcut is relayed through extra
    channels of the block's first LIF; identity shortcuts only move to the end of the edge list."""
    model = trained_like("resnet20", (3, 32, 32), 0.125)
    graph = model_to_nir(model, (3, 32, 32), T=T, dt=1e-3, encoding="direct", input_scale=1.0)
    g = for_consumer(graph, "norse")
    assert "body_5_shortcut" not in g.nodes and "body_8_shortcut" not in g.nodes
    own = {k: graph.nodes[f"{k}_act1"].tau.shape for k in ("body_5", "body_8")}
    x_channels = {k: graph.nodes[f"{k}_shortcut"].weight.shape[1] for k in own}
    assert g.metadata["relay_channels"] == f"body_5_act1:{own['body_5'][0]},body_8_act1:{own['body_8'][0]}"
    for k, (c, h, w) in own.items():  # the block's own neurons, then one relay neuron per input channel
        assert g.nodes[f"{k}_act1"].tau.shape == (c + x_channels[k], h, w)
    assert ("body_1", "body_2_act2") in g.edges  # identity shortcut kept
    assert "body_5_shortcut" in for_consumer(graph, "snntorch").nodes  # snnTorch's fx executor needs no chain


def test_convnet1d_runs_in_both(tmp_path):
    """(k, 1) kernels: both importers map them (kernel from the weight's shape); plain nir 1.0.8 mistypes
    them on read (deploy/graph/compat.py), so the metadata says how to read the file."""
    shape = (1, 40, 1)
    model = trained_like("convnet1d", shape, 0.5)
    graph = model_to_nir(model, shape, T=T, dt=1e-3, encoding="direct", input_scale=1.0)
    x = _inputs(shape)
    ref, logits = model_spikes(model, x)
    for consumer in CONSUMERS:
        g = for_consumer(graph, consumer)
        assert "type_check=False" in g.metadata["nir_read"]
        nir.write(tmp_path / "g.nir", g)
        spikes, summed = run_in_consumer(nir.read(tmp_path / "g.nir", type_check=False), consumer, x)
        assert torch.equal(summed.argmax(1), logits.argmax(1))
        assert all(torch.equal(spikes[k], ref[k]) for k in ref)


def test_what_a_consumer_cannot_express_is_refused_in_one_line():
    model = trained_like("convnet", (1, 28, 28), 0.5)
    graph = model_to_nir(model, (1, 28, 28), T=T, dt=1e-3, encoding="direct", input_scale=1.0)
    with pytest.raises(TnaError, match="unknown NIR consumer 'brian2'; known: norse, snntorch"):
        for_consumer(graph, "brian2")
    lif = graph.nodes["body_1"]
    lif.v_threshold = lif.v_threshold.copy()
    lif.v_threshold[0] = 2.0
    with pytest.raises(TnaError, match="body_1: per-neuron v_threshold") as err:
        for_consumer(graph, "snntorch")  # snnTorch asserts one threshold per layer
    assert "\n" not in str(err.value)
    assert np.array_equal(for_consumer(graph, "norse").nodes["body_1"].v_threshold, lif.v_threshold)  # Norse: per neuron
    with pytest.raises(TnaError, match="written for tna, not norse"):
        run_in_consumer(graph, "norse", _inputs((1, 28, 28)))


# ---- the command line, on a tiny trained run ---------------------------------------------------------
TINY = ["--train-samples", "256", "--width", "0.25", "-T", str(T), "--batch-size", "64", "--epochs", "1"]


def _run(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("consumers") / "run"
    proc = _run("-m", "tna.cli", "train", "--strategy", "baseline", *TINY, "--out", run)
    assert proc.returncode == 0, proc.stderr
    return run


def test_cli_writes_each_consumer_graph(tiny_run, capfd):
    from deploy.pipeline import reference_inputs, trained_spikes
    from tna.build import load_trained

    run = load_trained(tiny_run)
    x, _, _ = reference_inputs(run, 16)
    _, logits = trained_spikes(run.model, x)
    for consumer in CONSUMERS:
        proc = _run("deploy/export_nir.py", tiny_run, "--consumer", consumer)
        path = tiny_run / "deploy" / f"model-{consumer}.nir"
        assert proc.returncode == 0 and proc.stdout.strip() == f"wrote {path}", proc.stderr
        g = nir.read(path)
        assert g.metadata["consumer"] == consumer and g.metadata["model"] == "convnet"
        _stock_import(g, consumer)
        _, summed = run_in_consumer(g, consumer, x)
        assert torch.equal(summed.argmax(1), logits.argmax(1))
    assert sorted(p.name for p in (tiny_run / "deploy").iterdir()) == ["model-norse.nir", "model-snntorch.nir"]
    # --out: written beside it (export's --out names model.nir); the script's main, in this process
    from deploy import export_nir

    out = tiny_run / "elsewhere" / "model.nir"
    assert export_nir.main([str(tiny_run), "--consumer", "norse", "--out", str(out)]) == 0
    assert (out.parent / "model-norse.nir").is_file() and not out.exists()
    assert tuple(export_nir.CONSUMERS) == tuple(CONSUMERS)  # the script's choices are the module's


def test_cli_bad_consumer_and_unsupported_run(tiny_run, tmp_path, capsys):
    from deploy import export_nir

    with pytest.raises(SystemExit) as exit_:
        export_nir.main([str(tiny_run), "--consumer", "brian2"])
    assert exit_.value.code == 2 and "invalid choice: 'brian2'" in capsys.readouterr().err
    ann = tmp_path / "ann"
    proc = _run("-m", "tna.cli", "train", "--neuron", "relu", "--weights", "full", "--strategy", "baseline",
                *TINY, "--out", ann)
    assert proc.returncode == 0, proc.stderr
    proc = _run("deploy/export_nir.py", ann, "--consumer", "snntorch")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: this run is an ANN")
    assert not (ann / "deploy").exists()  # refused before anything is written


@pytest.mark.parametrize("tau_mem", [1.5e-3, 2e-3, 3e-3, 5e-3, 7e-3, 10e-3])
def test_written_tau_gives_the_trained_decay_exactly(tau_mem):
    """Each consumer computes its per-step decay from tau in float32 (Norse: dt * (1/tau) in torch;
    snnTorch: 1e-4/tau in numpy): the tau written makes that exactly the trained dt/tau_mem."""
    from tna.neuron import LIF

    torch.manual_seed(0)
    model = build_model("convnet", (1, 28, 28), 10, neuron=LIF(tau_mem=tau_mem), width=0.25).eval()
    graph = model_to_nir(model, (1, 28, 28), T=T, dt=1e-3, encoding="direct", input_scale=1.0)
    decay = torch.tensor(1e-3 / tau_mem, dtype=torch.float32)  # as tna.neuron.LIF steps it
    norse_tau = for_consumer(graph, "norse").nodes["body_1"].tau
    assert torch.all(1e-3 * (1 / torch.from_numpy(norse_tau)) == decay)
    snn = for_consumer(graph, "snntorch")
    assert np.all(1e-4 / snn.nodes["body_1"].tau == decay.numpy()) and snn.metadata["decay"] == float(decay)


def test_a_decay_float32_cannot_hold_exactly_still_runs_as_trained():
    """tau_mem 3 ms: decay 1/3 (inexact in float32; Norse needs the searched tau for its product)."""
    from tna.neuron import LIF

    torch.manual_seed(0)
    model = build_model("convnet", (1, 28, 28), 10, neuron=LIF(tau_mem=3e-3), width=0.5)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None
    with torch.no_grad():
        model.train()(torch.rand(4, 8, 1, 28, 28) * 2)
        for bn in bns:
            bn.weight.uniform_(1.0, 2.0)
            bn.bias.uniform_(0.0, 0.8)
    model.eval()
    graph = model_to_nir(model, (1, 28, 28), T=T, dt=1e-3, encoding="direct", input_scale=1.0)
    x = _inputs((1, 28, 28), n=16)
    ref, logits = model_spikes(model, x)
    assert 0.01 < np.mean([s.mean().item() for s in ref.values()]) < 0.9
    for consumer in CONSUMERS:
        spikes, summed = run_in_consumer(for_consumer(graph, consumer), consumer, x)
        assert torch.equal(summed.argmax(1), logits.argmax(1))
        equal = sum(int((spikes[k] == ref[k]).sum()) for k in ref) / sum(ref[k].numel() for k in ref)
        # Norse: exact by construction; snnTorch: measured identical too (see the bound's note above)
        assert equal == 1.0 if consumer == "norse" else equal >= 0.9999
