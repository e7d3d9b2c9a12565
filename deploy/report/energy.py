"""Energy models: named, cited tables of constants, and the one formula each applies.

These are ESTIMATES from published per-operation figures, not measurements of any chip.

- `horowitz45nm`: M. Horowitz, "Computing's energy problem (and what we can do about it)",
  ISSCC 2014: 32-bit float add (an accumulate, AC) 0.9 pJ, 32-bit float multiply-accumulate
  (MAC) 4.6 pJ (3.7 pJ multiply + 0.9 pJ add), 45 nm. The usual SNN-vs-ANN comparison:
  SNN = synaptic operations x E_AC (+ MACs of an analog first layer), ANN = MACs x E_MAC.
- `loihi1`: M. Davies et al., "Loihi: a neuromorphic manycore processor with on-chip learning",
  IEEE Micro 38(1), 2018, Table 1 (pre-silicon simulation figures, 14 nm): 23.6 pJ per
  synaptic spike operation, 52 pJ per neuron update when inactive, 81 pJ when it spikes,
  1.7 pJ per spike sent within a tile (routing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EnergyModel:
    name: str
    source: str
    pre_silicon: bool
    pj_per_ac: float | None = None  # accumulate (a synaptic op on a spike)
    pj_per_mac: float | None = None  # multiply-accumulate
    pj_per_synop: float | None = None  # neuromorphic synaptic spike operation
    pj_per_update_inactive: float | None = None
    pj_per_update_active: float | None = None
    pj_per_spike_routed: float | None = None


HOROWITZ_45NM = EnergyModel(
    name="horowitz45nm", source="Horowitz, ISSCC 2014 (45 nm, 32-bit float)", pre_silicon=False,
    pj_per_ac=0.9, pj_per_mac=4.6)
LOIHI1_ENERGY = EnergyModel(
    name="loihi1", source="Davies et al., IEEE Micro 2018, Table 1 (pre-silicon, 14 nm)", pre_silicon=True,
    pj_per_synop=23.6, pj_per_update_inactive=52.0, pj_per_update_active=81.0, pj_per_spike_routed=1.7)
MODELS = {m.name: m for m in (HOROWITZ_45NM, LOIHI1_ENERGY)}


def snn_energy_pj(counts: dict, model: EnergyModel) -> float:
    """Energy of one inference of a spiking network from its operation counts:
    counts = {synops, analog_macs, neuron_updates, spikes}."""
    if model.pj_per_ac is not None:  # digital accelerator model
        return counts["synops"] * model.pj_per_ac + counts["analog_macs"] * model.pj_per_mac
    active = counts["spikes"]
    return (counts["synops"] + counts["analog_macs"]) * model.pj_per_synop \
        + active * model.pj_per_update_active + (counts["neuron_updates"] - active) * model.pj_per_update_inactive \
        + active * model.pj_per_spike_routed


def ann_energy_pj(macs: int, model: EnergyModel = HOROWITZ_45NM) -> float:
    """The same-shape ANN: every synapse multiplies and accumulates once per inference."""
    return macs * model.pj_per_mac


def describe(model: EnergyModel) -> dict:
    return asdict(model)
