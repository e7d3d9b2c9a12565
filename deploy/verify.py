"""Compare the deployed network with the trained one, spike by spike (files: deploy/files.py).

For every spiking layer, sample, time step and neuron, the trained side (reference.h5) and the
deployed side (Lava's output) either agree or not. Fixed-point Lava is held to the `loihi`
arithmetic of the same graph (it must agree exactly); floating-point Lava to the trained model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.files import open_h5, stale
from tna.errors import TnaError

GOLDEN = {"fixed": "loihi", "float": "float"}  # Lava mode -> the golden group of reference.h5 it is held to


def compare(reference: str | Path, deployed: str | Path, mode: str) -> dict:
    """The verification record (JSON-ready) for one deployment mode."""
    if mode not in GOLDEN:
        raise TnaError(f"unknown mode '{mode}'; use float or fixed")
    with open_h5(Path(reference), "reference") as ref, open_h5(Path(deployed), "Lava output") as dep:
        why = stale(dict(dep.attrs), reference)
        if why:
            raise TnaError(f"{deployed} was run on another {why} than {reference} (stale); run Lava on this "
                           "reference again ('tna deploy')")
        group = GOLDEN[mode]
        if group not in ref:
            raise TnaError(f"{reference} has no '{group}' golden data; export again with this version")
        layers = list(ref.attrs["layers"])
        labels = ref["labels"][:]
        n = dep.attrs.get("samples", len(labels))
        labels = labels[:n]
        per_layer, first, agree, total = {}, None, 0, 0
        for name in layers:
            if f"spikes/{name}" not in dep:
                raise TnaError(f"{deployed} has no spikes for layer {name}")
            a = ref[f"{group}/spikes/{name}"][:n].astype(bool)
            b = dep[f"spikes/{name}"][:n].astype(bool)
            if a.shape != b.shape:
                raise TnaError(f"layer {name}: trained spikes {a.shape} vs deployed {b.shape}")
            same = a == b
            per_layer[name] = {
                "agreement": float(same.mean()), "entries": int(same.size),
                "spikes_trained": int(a.sum()), "spikes_deployed": int(b.sum()),
                "per_step_agreement": same.reshape(n, a.shape[1], -1).mean(axis=(0, 2)).round(8).tolist(),
            }
            agree += int(same.sum())
            total += same.size
            bad = np.argwhere(~same)
            if len(bad):
                s, t, *neuron = bad[0].tolist()
                cand = {"sample": s, "layer": name, "time_step": t, "neuron": neuron,
                        "trained": bool(a[tuple(bad[0])]), "deployed": bool(b[tuple(bad[0])])}
                if first is None or (s, t) < (first["sample"], first["time_step"]):
                    first = cand
        ref_pred = ref[f"{group}/logits"][:n].argmax(1)
        dep_pred = dep["logits"][:n].argmax(1)
        has_labels = bool(ref.attrs.get("has_labels", True))
        foreign = "source_graph" in ref.attrs
    return {
        "mode": mode, "golden": group, "samples": int(n),
        "spike_agreement": agree / total if total else 1.0,  # no spiking layer: nothing can disagree
        "spiking_layers": len(layers),
        "layers": per_layer,
        "first_divergence": first,
        "output_agreement": float((ref_pred == dep_pred).mean()),
        "accuracy_trained": float((ref_pred == labels).mean()) if has_labels else None,
        "accuracy_deployed": float((dep_pred == labels).mean()) if has_labels else None,
        "reference": "float reference of the graph" if foreign else "trained model",
        "spikes_trained": sum(v["spikes_trained"] for v in per_layer.values()),
        "spikes_deployed": sum(v["spikes_deployed"] for v in per_layer.values()),
    }


def summary(v: dict) -> str:
    """A table a person reads: one row per layer, then the verdict."""
    side = "loihi-exact emulator" if v["golden"] == "loihi" else (
        "float reference" if v.get("reference", "").startswith("float") else "trained (Norse)")
    ref = "spikes reference" if v.get("reference", "").startswith("float") else "spikes trained"
    lines = [f"verification: Lava {v['mode']} vs {side}, {v['samples']} samples",
             f"{'layer':<22}{'agreement':>12}{ref:>18}{'spikes Lava':>13}"]
    for name, r in v["layers"].items():
        lines.append(f"{name:<22}{r['agreement']:>12.6%}{r['spikes_trained']:>18}{r['spikes_deployed']:>13}")
    lines.append(f"{'all layers':<22}{v['spike_agreement']:>12.6%}{v['spikes_trained']:>18}{v['spikes_deployed']:>13}")
    who = "reference" if v.get("reference", "").startswith("float") else "trained"
    acc = "" if v["accuracy_trained"] is None else (f"   accuracy {who} {v['accuracy_trained']:.2%}, "
                                                    f"Lava {v['accuracy_deployed']:.2%}")
    lines.append(f"same predicted class: {v['output_agreement']:.2%}{acc}")
    d = v["first_divergence"]
    lines.append("first divergence: none" if d is None else
                 f"first divergence: sample {d['sample']}, layer {d['layer']}, step {d['time_step']}, "
                 f"neuron {tuple(d['neuron'])} (trained {int(d['trained'])}, Lava {int(d['deployed'])})")
    return "\n".join(lines)


def compare_outputs(a_path: str | Path, b_path: str | Path, reference: str | Path) -> dict:
    """Two Lava outputs of the same reference (fixed vs float): spike agreement per layer and overall,
    same predicted class, and accuracy of each when the reference has labels."""
    with open_h5(Path(reference), "reference") as ref:
        layers = list(ref.attrs["layers"])
        labels = ref["labels"][:]
        has_labels = bool(ref.attrs.get("has_labels", True))
    with open_h5(Path(a_path), "Lava output") as a, open_h5(Path(b_path), "Lava output") as b:
        n = int(min(a.attrs.get("samples", 0), b.attrs.get("samples", 0)))
        per, agree, total = {}, 0, 0
        for name in layers:
            sa, sb = a[f"spikes/{name}"][:n].astype(bool), b[f"spikes/{name}"][:n].astype(bool)
            same = sa == sb
            per[name] = {"agreement": float(same.mean()), "spikes_a": int(sa.sum()), "spikes_b": int(sb.sum())}
            agree, total = agree + int(same.sum()), total + same.size
        pa, pb = a["logits"][:n].argmax(1), b["logits"][:n].argmax(1)
    out = {"a": Path(a_path).name, "b": Path(b_path).name, "samples": n, "spike_agreement": agree / total if total else 1.0,
           "layers": per, "same_class": float((pa == pb).mean())}
    if has_labels:
        out["accuracy_a"], out["accuracy_b"] = float((pa == labels[:n]).mean()), float((pb == labels[:n]).mean())
    return out


def cross_summary(c: dict) -> str:
    lines = [f"what quantisation costs: {c['a']} vs {c['b']}, {c['samples']} samples",
             f"{'layer':<22}{'agreement':>12}{'spikes ' + c['a'][:10]:>20}{'spikes ' + c['b'][:10]:>20}"]
    for name, r in c["layers"].items():
        lines.append(f"{name:<22}{r['agreement']:>12.6%}{r['spikes_a']:>20}{r['spikes_b']:>20}")
    acc = f"   accuracy {c['accuracy_a']:.2%} vs {c['accuracy_b']:.2%}" if "accuracy_a" in c else ""
    lines.append(f"all layers {c['spike_agreement']:.6%}; same predicted class {c['same_class']:.2%}{acc}")
    return "\n".join(lines)


def mapping_summary(errors: dict) -> str:
    """The worst relative error of each stored value, per layer (deploy/loihi/fixed_point.mapping_errors)."""
    keys = ("weights", "threshold", "bias", "decay_v", "decay_u")
    lines = ["float -> Loihi mapping: worst relative error per layer",
             f"{'layer':<22}" + "".join(f"{k:>12}" for k in keys)]
    for name, r in errors.items():
        lines.append(f"{name:<22}" + "".join(f"{r[k]:>12.3g}" if k in r else f"{'-':>12}" for k in keys))
    return "\n".join(lines)
