"""Whether a graph's resources (`deploy/report/resources.py`) fit each target of `deploy/report/targets.py`.

`fit(graph, target)` maps the layers onto a target and names the binding constraint; four
mappings, one per kind of target (`Target.mapping`):

- "cores" (Loihi 1/2, SpiNNaker2), the partitioning rule (simple, stated, conservative):
  - a core holds neurons of ONE layer together with all of their incoming synapses;
  - a layer of shape (C, H, W) is cut into tiles of g channels x r rows x the full width (1-D layers
    are (N, 1, 1); a single row of one channel may be cut into w columns if nothing else fits);
  - per tile: neurons = g r w <= neurons per core; input axons (distinct source neurons) =
    C_in x min(H_in, (r-1) s + k) x min(W_in, (w-1) s + k) for a conv (every input channel, padding
    ignored), all connected sources for a dense map, g r w for an identity map, <= input axons per
    core; synaptic memory = neurons x sum over maps of (max fan-in x (weight bits + index bits))
    + axon overhead x input axons <= memory per core (max, not mean, fan-in: conservative);
  - output axons: a source neuron needs one per destination core it reaches; with the destination
    tiles fixed first (layers are placed from the output backwards), a tile's neurons x (cores
    reached per neuron) <= output axons per core;
  - per layer the tile with the fewest cores wins: cores(layer) = ceil(C/g) ceil(H/r) ceil(W/w);
    for the plain case this is max(ceil(neurons / neurons per core), ceil(synapse bits / memory per
    core)) or more;
  - chips = max(ceil(cores / cores per chip), ceil(neurons / neurons per chip),
    ceil(non-zero synapses / synapses per chip)).
  The binding constraint of a layer is the one whose removal would save the most cores (two names
  when only relaxing both helps); that of the network is the limit whose removal everywhere saves
  the most cores (or the limit a layer violates outright, or a chip-level limit when it sets the
  chip count).
- "layer-per-core" (Speck): one layer per core (sinabs' memory formulas), matched to the 9 cores;
- "single-core" (Xylo): one core of 1000 neurons;
- "host" (Lava on CPU): no limits.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import defaultdict

import numpy as np

from deploy.report.resources import FEATURES, resources
from deploy.report.targets import TARGETS, Fig, Target
from tna.errors import TnaError


def get_target(target) -> Target:
    if isinstance(target, Target):
        return target
    for t in TARGETS:
        if t.key == target:
            return t
    raise TnaError(f"unknown hardware target '{target}'; choose one of: {', '.join(t.key for t in TARGETS)}")


def _chw(shape) -> tuple[int, int, int]:
    return tuple(shape) if len(shape) == 3 else (int(np.prod(shape)), 1, 1)


def _tile_candidates(c, h, w):
    g, r = np.meshgrid(np.arange(1, c + 1), np.arange(1, h + 1), indexing="ij")
    g, r = g.ravel(), r.ravel()
    cols = np.arange(1, w)  # last resort: part of one row of one channel
    return (np.concatenate([g, np.ones_like(cols)]), np.concatenate([r, np.ones_like(cols)]),
            np.concatenate([np.full(g.size, w), cols]))


def _in_axons(m, g, r, w):
    """Distinct source neurons feeding a tile (never more than its neurons x max fan-in)."""
    n = g * r * w
    if m["kind"] == "identity":
        return n
    if m["kind"] == "dense":
        bound = np.full(g.shape, m["n_src"])
    else:
        _, hi, wi = m["in_shape"]
        rows = np.minimum(hi, (r - 1) * m["stride"][0] + m["k"][0])
        cols = np.minimum(wi, (w - 1) * m["stride"][1] + m["k"][1])
        bound = (m["c_in"] if m["kind"] == "conv" else g) * rows * cols
    return np.minimum(bound, n * m["fan_in"])


def _cores_reached(m, dest_shape, plan):
    """Destination cores one source neuron of map m reaches (conservative)."""
    if m["kind"] == "identity":
        return 1
    if m["kind"] == "dense":
        return plan["cores"]
    c, h, w = _chw(dest_shape)
    g, r, wt = plan["tile"]
    bands = lambda n, k, s, t: min(math.ceil(n / t), math.ceil((math.ceil(k / s) - 1) / t) + 1)  # noqa: E731
    rows, cols = bands(h, m["k"][0], m["stride"][0], r), bands(w, m["k"][1], m["stride"][1], wt)
    return (math.ceil(c / g) if m["kind"] == "conv" else 1) * rows * cols


def _place_layer(layer, t: Target, out_cap):
    c, h, w = _chw(layer["shape"])
    g, r, wt = _tile_candidates(c, h, w)
    n = g * r * wt
    cores = np.ceil(c / g) * np.ceil(h / r) * np.ceil(w / wt)
    lo, hi = t.index_bits_per_synapse.value or (0, 0)
    idx = np.clip(np.ceil(np.log2(np.maximum(n, 2))), lo, hi)
    axons = sum(_in_axons(m, g, r, wt) for m in layer["maps"])
    mem = n * sum(m["fan_in"] * (m["weight_bits"] + idx) for m in layer["maps"])
    mem = mem + (t.axon_overhead_bits.value or 0) * axons
    ok = {"neurons per core": n <= (t.neurons_per_core.value or np.inf),
          "input axons per core": axons <= (t.max_in_axons_per_core.value or np.inf),
          "synaptic memory per core": mem <= (t.synapse_memory_bits_per_core.value or np.inf),
          "output axons per core": n <= (out_cap if out_cap is not None else np.inf)}
    allok = np.logical_and.reduce(list(ok.values()))
    if not allok.any():
        first = int(np.argmin(n))  # a single neuron
        failing = [k for k in ("input axons per core", "synaptic memory per core", "output axons per core",
                               "neurons per core") if not ok[k][first]]
        detail = {"input axons per core": f"one neuron has {int(axons[first])} inputs > "
                                          f"{t.max_in_axons_per_core.value} input axons",
                  "synaptic memory per core": f"one neuron's synapses need {int(mem[first])} bits > "
                                              f"{t.synapse_memory_bits_per_core.value}",
                  "output axons per core": f"one neuron reaches more than {t.max_out_axons_per_core.value} cores",
                  "neurons per core": ""}[failing[0]]
        return {"feasible": False, "binding": failing[0], "detail": detail, "cores": int(cores[first]),
                "tile": (1, 1, 1), "neurons_per_core": 1}
    best = int(np.argmin(np.where(allok, cores, np.inf)))
    saving = {}
    for k in ok:
        others = np.logical_and.reduce([v for kk, v in ok.items() if kk != k])
        saving[k] = cores[best] - np.where(others, cores, np.inf).min()
    binding = max(saving, key=saving.get)
    if saving[binding] <= 0:  # no single constraint: two are tight together
        pairs = {}
        for a, b in itertools.combinations(ok, 2):
            others = np.logical_and.reduce([v for kk, v in ok.items() if kk not in (a, b)])
            pairs[f"{a} + {b}"] = cores[best] - np.where(others, cores, np.inf).min()
        binding = max(pairs, key=pairs.get)
        if pairs[binding] <= 0:
            binding = "neurons per core"
    return {"feasible": True, "binding": binding, "detail": "", "cores": int(cores[best]),
            "tile": (int(g[best]), int(r[best]), int(wt[best])), "neurons_per_core": int(n[best]),
            "input_axons": int(axons[best]), "memory_bits": int(mem[best])}


LIMITS = {"neurons per core": "neurons_per_core", "synaptic memory per core": "synapse_memory_bits_per_core",
          "input axons per core": "max_in_axons_per_core", "output axons per core": "max_out_axons_per_core"}


def _plan(res, t: Target) -> list[dict]:
    layers = res["layers"]
    plans: dict[str, dict] = {}
    for layer in reversed(layers):  # destinations first, for the output-axon limit
        out_cap = None
        if t.max_out_axons_per_core.value:
            reach = sum(_cores_reached(m, dest["shape"], plans[dest["name"]])
                        for dest in layers for m in dest["maps"] if m["source"] == layer["name"])
            if reach:
                out_cap = t.max_out_axons_per_core.value // reach
        plans[layer["name"]] = _place_layer(layer, t, out_cap)
    return [{"name": x["name"], **plans[x["name"]]} for x in layers]


def _fit_cores(res, t: Target):
    rows = _plan(res, t)
    bad = [p for p in rows if not p["feasible"]]
    if bad:
        first = bad[0]
        return {"fits": False, "cores": None, "chips": None, "layers": rows,
                "cores_other_layers": sum(p["cores"] for p in rows if p["feasible"]),
                "binding": f"{first['binding']} ({first['name']}: {first['detail']})"}
    cores = sum(p["cores"] for p in rows)
    # the network's binding constraint: the limit whose removal (everywhere) saves the most cores
    saving = {}
    for label, fld in LIMITS.items():
        if getattr(t, fld).value is not None:
            relaxed = _plan(res, dataclasses.replace(t, **{fld: Fig(None)}))
            if all(p["feasible"] for p in relaxed):
                saving[label] = cores - sum(p["cores"] for p in relaxed)
    binding = max(saving, key=saving.get) if saving else "neurons per core"
    if not saving or saving[binding] <= 0:
        cost = defaultdict(int)
        for p in rows:
            cost[p["binding"]] += p["cores"]
        binding = max(cost, key=cost.get)
    tot = res["totals"]
    chip_needs = {"cores per chip": math.ceil(cores / t.cores_per_chip.value)}
    if t.neurons_per_chip.value:
        chip_needs["neurons per chip"] = math.ceil(tot["neurons"] / t.neurons_per_chip.value)
    if t.synapses_per_chip.value:
        chip_needs["synapses per chip"] = math.ceil(tot["synapses_nonzero"] / t.synapses_per_chip.value)
    chips = max(chip_needs.values())
    chip_binding = max(chip_needs, key=chip_needs.get)
    if chip_binding != "cores per chip" and chip_needs[chip_binding] > chip_needs["cores per chip"]:
        binding = chip_binding
    fits = t.max_chips.value is None or chips <= t.max_chips.value
    if not fits:
        binding = f"chips ({chips} needed, the device has {t.max_chips.value}; per-layer: {binding})"
    return {"fits": fits, "cores": cores, "chips": chips, "layers": rows, "binding": binding,
            "chip_needs": chip_needs}


def _speck_layer(layer, t: Target):
    f, h, w = _chw(layer["shape"])
    problems, kernels, srcs = [], [], []
    c_total = 0
    for m in layer["maps"]:
        cin, hi, wi = _chw(m["in_shape"])
        if m["kind"] in ("conv", "pool"):
            k, s, p = m["kernel"], m["stride"], m["padding"]
        elif m["kind"] == "dense":  # a full-size kernel over the source map
            k, s, p = (hi, wi), (1, 1), (0, 0)
        else:
            k, s, p = (1, 1), (1, 1), (0, 0)
        if k[0] != k[1]:
            problems.append(f"kernel {k[0]}x{k[1]} is not square")
        if max(k) > t.max_kernel_size.value:
            problems.append(f"kernel {max(k)} > {t.max_kernel_size.value}")
        if s[0] != s[1] or s[0] not in t.strides.value:
            problems.append(f"stride {s} not in {t.strides.value}")
        if max(p) > t.max_padding.value:
            problems.append(f"padding {max(p)} > {t.max_padding.value}")
        if max(hi, wi) > t.max_input_size.value:
            problems.append(f"input {hi}x{wi} > {t.max_input_size.value}")
        kernels.append(max(k))
        srcs.append((hi, wi, s))
        c_total += cin
    if len(set(srcs)) > 1:
        problems.append("merged inputs differ in resolution or stride (one kernel cannot serve both)")
    if max(f, c_total) > t.max_channels.value:
        problems.append(f"channels {max(f, c_total)} > {t.max_channels.value}")
    if max(h, w) > t.max_output_map.value:
        problems.append(f"output map {h}x{w} > {t.max_output_map.value}")
    lg = lambda v: int(math.ceil(math.log2(v))) if v > 1 else 0  # noqa: E731
    k = max(kernels)
    return {"name": layer["name"], "kernel_memory": c_total * 2 ** (lg(k * k) + lg(f)),
            "neuron_memory": f * 2 ** (lg(h) + lg(w)), "problems": problems}


def _match(need, cores) -> dict | None:
    """Assign each layer a distinct core with enough memory (augmenting paths)."""
    owner: dict[int, int] = {}

    def place(i, seen):
        for c, (km, nm) in enumerate(cores):
            if c in seen or need[i]["kernel_memory"] > km or need[i]["neuron_memory"] > nm:
                continue
            seen.add(c)
            if c not in owner or place(owner[c], seen):
                owner[c] = i
                return True
        return False

    for i in range(len(need)):
        if not place(i, set()):
            return None
    return {need[i]["name"]: c for c, i in owner.items()}


def _fit_speck(res, t: Target):
    need = [_speck_layer(x, t) for x in res["layers"]]
    dests = defaultdict(set)
    for x in res["layers"]:
        for m in x["maps"]:
            dests[m["source"]].add(x["name"])
    violations = [f"{n['name']}: {p}" for n in need for p in n["problems"]]
    violations += [f"{s}: {len(d)} destination layers > {t.max_destinations.value}"
                   for s, d in dests.items() if s in {x["name"] for x in res["layers"]}
                   and len(d) > t.max_destinations.value]
    cores = list(zip(t.core_kernel_memory.value, t.core_neuron_memory.value))
    if len(need) > len(cores):
        binding = f"cores per chip ({len(need)} layers > {len(cores)} cores)"
        return {"fits": False, "cores": len(need), "chips": None, "binding": binding, "violations": violations,
                "layers": need}
    too_big = [n for n in need if not any(n["neuron_memory"] <= nm for _, nm in cores)]
    too_wide = [n for n in need if not any(n["kernel_memory"] <= km for km, _ in cores)]
    assignment = None if too_big or too_wide else _match(need, cores)
    if too_big:
        x = too_big[0]
        binding = f"neuron memory per core ({x['name']}: {x['neuron_memory']} > {max(c[1] for c in cores)})"
    elif too_wide:
        x = too_wide[0]
        binding = f"kernel memory per core ({x['name']}: {x['kernel_memory']} > {max(c[0] for c in cores)})"
    elif assignment is None:
        binding = "per-core kernel/neuron memory (no assignment of layers to the 9 cores)"
    elif violations:
        binding = f"layer limits ({violations[0]})"
    else:
        binding = "cores per chip" if len(need) == len(cores) else "none"
    fits = assignment is not None and not violations
    for n in need:
        n["core"] = None if assignment is None else assignment.get(n["name"])
    return {"fits": fits, "cores": len(need), "chips": 1 if fits else None, "binding": binding,
            "violations": violations, "layers": need}


def _fit_single_core(res, t: Target):
    tot = res["totals"]
    readout = sum(x["neurons"] for x in res["layers"] if x["kind"] == "I")
    hidden = tot["neurons"] - readout
    demand = [("hidden neurons", hidden, t.neurons_per_core.value),
              ("input channels", sum(i["neurons"] for i in res["inputs"]), t.max_input_channels.value),
              ("output neurons", readout, t.max_output_neurons.value),
              ("fan-out per neuron", tot["fan_out"], t.max_fan_out.value),
              ("fan-in per neuron", tot["fan_in"], t.max_fan_in.value)]
    over = [(name, need, cap) for name, need, cap in demand if cap is not None and need > cap]
    if not over:
        return {"fits": True, "cores": 1, "chips": 1, "binding": "none", "violations": []}
    over.sort(key=lambda v: v[1] / v[2], reverse=True)
    return {"fits": False, "cores": None, "chips": None, "violations": [f"{n}: {a} > {b}" for n, a, b in over],
            "binding": f"{over[0][0]} ({over[0][1]} > {over[0][2]})"}


def _fit_host(res, t: Target):
    notes = []
    if t.decay_bits.value:
        dt = float(res["metadata"].get("dt", 1e-3))
        for tau in res["lif_taus"]:
            dv = 4096 * dt / tau
            notes.append(f"tau {tau:g} s, dt {dt:g} s: dv = {dv:g}" + ("" if abs(dv - round(dv)) < 1e-3
                                                                       else f" (rounds to {round(dv)})"))
    return {"fits": True, "cores": None, "chips": None, "binding": "none (CPU memory only)", "notes": notes}


def fit(graph, target) -> dict:
    """Does the graph fit `target` (a Target or its key)? Cores, chips, the binding constraint, and which
    of the export's features the target does not support."""
    return fit_resources(resources(graph), get_target(target))


def fit_all(graph) -> tuple[dict, dict]:
    """The graph's resources (counted once) and its fit on every target: (resources, {key: fit})."""
    res = resources(graph)
    return res, {t.key: fit_resources(res, t) for t in TARGETS}


def fit_resources(res: dict, t: Target) -> dict:
    """The fit of counted resources (`resources(graph)`) on one target."""
    if t.mapping == "host":
        out = _fit_host(res, t)
    elif t.mapping == "cores":
        out = _fit_cores(res, t)
    elif t.mapping == "layer-per-core":
        out = _fit_speck(res, t)
    else:
        out = _fit_single_core(res, t)
    unsupported, partial = [], []
    for f in FEATURES:
        if not res["features"][f]:
            continue
        s = getattr(t.support, f)
        if s.value is False:
            unsupported.append(f"{f}: {s.note}" if s.note else f)
        elif s.value is not True:
            partial.append(f"{f}: {'unknown' if s.value is None else 'partial'}" + (f" ({s.note})" if s.note else ""))
    out.setdefault("violations", [])
    out.setdefault("notes", [])
    out.update({"target": t.key, "name": t.name, "unsupported": unsupported, "partial": partial,
                "deployable": out["fits"] and not unsupported})
    return out
