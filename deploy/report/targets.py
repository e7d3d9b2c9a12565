"""Hardware targets as data: what each platform offers, every number with its source.

No logic lives here (the fit that uses these figures is `deploy/report/fit.py`).
Each figure is a `Fig`: `value` (None = not published, or not confirmed by us), `source` (a key of
`SOURCES`), `estimated` (True = pre-silicon, secondary source, or our own assumption, said in
`note`) and `note`. `hardware_targets.md` is the readable version of this file.

Units: memory in bits, counts in neurons / synapses / axons, precision in bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = {
    "davies2018": "M. Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip Learning', "
                  "IEEE Micro 38(1), 2018. https://doi.org/10.1109/MM.2018.112130359",
    "cas2022": "IEEE Circuits and Systems Magazine, Q2 2022 survey (Loihi: 16 MB synaptic memory in total, "
               "densest format 1-bit synapses). https://nxtbook.com/nxtbooks/ieee/circuitsandsystems_2022Q2/",
    "nengo_loihi": "nengo-loihi source, nengo_loihi/block.py (MAX_COMPARTMENTS, MAX_IN_AXONS, MAX_OUT_AXONS, "
                   "MAX_SYNAPSE_BITS, SynapseConfig INDEX_BITS_MAP / WEIGHT_BITS_MAP / bits_per_axon), "
                   "Applied Brain Research, 2019-2022. https://github.com/nengo/nengo-loihi",
    "wikichip_loihi": "WikiChip, 'Loihi - Intel' (131,072 neurons, 130 M synapses per chip). "
                      "https://en.wikichip.org/wiki/intel/loihi",
    "intel_loihi2": "Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', technology brief, "
                    "2021 (128 neuro cores, up to 1 M neurons and 120 M synapses per chip, graded spikes, "
                    "programmable neurons). https://download.intel.com/newsroom/2021/new-technologies/"
                    "neuromorphic-computing-loihi-2-brief.pdf",
    "wikichip_loihi2": "WikiChip, 'Loihi 2 - Intel' (1,048,576 neurons = 8,192 per core, 120 M synapses). "
                       "https://en.wikichip.org/wiki/intel/loihi_2",
    "press_loihi2": "Press coverage of the Loihi 2 launch, 2021 (128 KB of local SRAM per core, flexibly "
                    "partitioned). https://fbhtechinfo.com/intels-new-loihi-2-chip-uses-1-million-neurons",
    "stack": "This project's /work/shared/STACK.md (Loihi 2: graded spikes up to 24 bits), as given to us.",
    "lava_notes": "docs/lava_notes.md in this repository: lava-nc 0.10.0 source read and checked by experiment "
                  "(2025).",
    "gonzalez2024": "H. A. Gonzalez et al., 'SpiNNaker2: A Large-Scale Neuromorphic System for Event-Based and "
                    "Asynchronous Machine Learning', arXiv:2401.04491, 2024 (152 PEs per chip).",
    "hoppner2021": "S. Hoeppner et al., 'The SpiNNaker 2 Processing Element Architecture for Hybrid Digital "
                   "Neuromorphic Computing', arXiv:2103.08392, 2021 (ARM Cortex-M4F PE, 128 kB local SRAM, "
                   "MAC and exp/log accelerators, 22 nm FDSOI).",
    "on_spinnaker2": "open-neuromorphic.org, 'SpiNNaker 2' (153 ARM cores, 19 MB on-chip SRAM, 2 GB DRAM). "
                     "https://open-neuromorphic.org/neuromorphic-computing/hardware/spinnaker-2-university-of-dresden/",
    "spynnaker": "sPyNNaker limitations (SpiNNaker 1: 256 neurons per core). "
                 "http://spinnakermanchester.github.io/2015.005.Arbitrary/SPyNNakerLimitations.html",
    "nir_tutorial_s2": "B. Vogginger, NIR tutorial at NICE 2024, notebooks/spinnaker2_demo (py-spinnaker2 "
                       "s2_nir.from_nir; set_max_atoms_per_core 16-256; inputs as spike lists). "
                       "https://github.com/bvogginger/NIR_Tutorial_at_NICE_2024",
    "rockpool_xylo": "Rockpool documentation, 'Overview of the Xylo family' (Xylo Audio 2: 16 input channels, "
                     "1000 hidden neurons, 2 synaptic states, 8 output neurons, max fan-out 64; 8-bit weights; "
                     "bit-shift decay; subtractive reset). https://rockpool.ai/devices/xylo-overview.html",
    "rockpool_mapper": "Rockpool source, rockpool/devices/xylo/syns61201/xylo_mapper.py (max_hidden_neurons=1000, "
                       "max_output_neurons=8; int8 weights, int16 thresholds, uint8 bit-shift decays). "
                       "https://github.com/synsense/rockpool",
    "on_xylo": "open-neuromorphic.org, 'Xylo - SynSense' (Xylo Audio 2: 16-bit synaptic and membrane states, "
               "max fan-in 63, 64,000 synaptic weights). "
               "https://open-neuromorphic.org/neuromorphic-computing/hardware/xylo-synsense/",
    "sinabs_overview": "Sinabs documentation, 'Overview' of DYNAP-CNN / Speck (9 layers/cores, 0.32 M neurons, "
                       "8-bit weights, 16-bit states, kernel <= 16x16, stride 1/2/4/8, padding 0-7, sum pooling "
                       "1/2/4, fan-out 2, max 1024 channels, input <= 128x128, output map <= 64x64, memory "
                       "formulas). https://github.com/synsense/sinabs/blob/develop/docs/source/getting_started/"
                       "overview.md",
    "sinabs_constraints": "Sinabs source, sinabs/backend/dynapcnn/chips/dynapcnn.py get_constraints() (per-core "
                          "kernel and neuron memory) and dynapcnn_layer.py memory_summary(). "
                          "https://github.com/synsense/sinabs",
    "sinabs_faq": "Sinabs documentation, FAQ 'Available network architecture' (2 destinations per core, several "
                  "cores into one core for residuals, channel shift for concatenation, conv->IAF->pool order, "
                  "readout < 15 classes). https://github.com/synsense/sinabs/blob/develop/docs/source/faqs/"
                  "available_network_arch.md",
    "nir2024": "J. E. Pedersen et al., 'Neuromorphic intermediate representation: A unified instruction set for "
               "interoperable brain-inspired computing', Nat. Commun. 15, 8122 (2024); platform list at "
               "https://neuroir.org/docs/support.html. https://doi.org/10.1038/s41467-024-52259-9",
    "assumption": "Our assumption where nothing is published; see the note.",
}


@dataclass(frozen=True)
class Fig:
    """One figure: value (None = unknown/not published), source key, estimated flag, note."""

    value: object
    source: str = ""
    estimated: bool = False
    note: str = ""


NA = Fig(None, note="not applicable")


@dataclass(frozen=True)
class Support:
    """Whether the target runs each feature of a tna export: value True, False, 'partial' or None
    (unknown)."""

    lif_current_free: Fig      # v += dt/tau (v_leak - v + x), reset to v_reset, per-neuron thresholds
    ternary_weights: Fig       # codes {-1, 0, +1} x a per-output-channel scale
    conv2d: Fig
    avg_pool: Fig
    residual_add: Fig          # two synapse maps summed into one neuron
    integrator_readout: Fig    # nir.I: a non-spiking accumulator over T steps
    analog_input: Fig          # 'direct' encoding: real-valued input into the first layer


@dataclass(frozen=True)
class Target:
    key: str
    name: str
    mapping: str               # "host" (CPU simulation) | "cores" | "layer-per-core" | "single-core"
    status: str
    cores_per_chip: Fig
    neurons_per_core: Fig
    synapse_memory_bits_per_core: Fig
    index_bits_per_synapse: Fig        # (min, max) address bits stored with each sparse synapse
    axon_overhead_bits: Fig            # per input axon per core (headers, word rounding)
    max_in_axons_per_core: Fig
    max_out_axons_per_core: Fig
    max_fan_in: Fig                    # per neuron
    max_fan_out: Fig                   # per neuron
    neurons_per_chip: Fig
    synapses_per_chip: Fig
    max_chips: Fig                     # None = multi-chip systems exist (not modelled as a limit)
    weight_bits: Fig                   # widest signed weight
    state_bits: Fig
    decay_bits: Fig
    graded_spike_bits: Fig             # 0 = binary spikes only
    neuron_models: tuple[str, ...]
    input_encodings: tuple[str, ...]
    support: Support
    # single-core devices (Xylo)
    max_input_channels: Fig = NA
    max_output_neurons: Fig = NA
    # layer-per-core devices (Speck / DYNAP-CNN): one entry per core, in memory entries
    core_kernel_memory: Fig = NA
    core_neuron_memory: Fig = NA
    max_kernel_size: Fig = NA
    strides: Fig = NA
    max_padding: Fig = NA
    max_channels: Fig = NA
    max_input_size: Fig = NA
    max_output_map: Fig = NA
    max_destinations: Fig = NA
    notes: tuple[str, ...] = field(default=())


_LAVA_COMMON = dict(
    mapping="host", status="software simulation on CPU (lava-nc 0.10.0)",
    cores_per_chip=NA, neurons_per_core=Fig(None, "lava_notes", note="no limit on CPU"),
    synapse_memory_bits_per_core=Fig(None, "lava_notes", note="host RAM only"),
    index_bits_per_synapse=NA, axon_overhead_bits=NA,
    max_in_axons_per_core=NA, max_out_axons_per_core=NA,
    max_fan_in=Fig(None, "lava_notes", note="no limit"), max_fan_out=Fig(None, "lava_notes", note="no limit"),
    neurons_per_chip=NA, synapses_per_chip=NA, max_chips=NA,
)

LAVA_FLOAT = Target(
    key="lava-float", name="Lava CPU, floating_pt", **_LAVA_COMMON,
    weight_bits=Fig(64, "lava_notes", note="float64 arithmetic"),
    state_bits=Fig(64, "lava_notes", note="float64 u, v"),
    decay_bits=Fig(None, "lava_notes", note="du, dv are real numbers"),
    graded_spike_bits=Fig(64, "lava_notes", note="Dense/Conv with num_message_bits > 0 pass real values"),
    neuron_models=("LIF (current-based, u and v; Lava stock)", "LIFReset", "TernaryLIF", "LIFRefractory",
                   "any custom ProcessModel"),
    input_encodings=("graded values (num_message_bits > 0)", "binary spikes"),
    support=Support(
        lif_current_free=Fig(True, "lava_notes", note="du = 1 (u = input), dv = dt/tau; stock LIF has ONE vth per "
                                                      "process, per-neuron thresholds need the VthLIF process"),
        ternary_weights=Fig(True, "lava_notes"),
        conv2d=Fig(True, "lava_notes", note="Conv process (true convolution: flip kernels), 1 step delay"),
        avg_pool=Fig(True, "lava_notes", note="depthwise Conv of ones = sum pooling; fold 1/k^2 downstream"),
        residual_add=Fig(True, "lava_notes", note="several OutPorts into one InPort are summed; align delays"),
        integrator_readout=Fig(True, "lava_notes", note="no nir.I process: LIF with du = 1, dv = 0 and an "
                                                        "unreachable threshold integrates"),
        analog_input=Fig(True, "lava_notes", note="graded input with num_message_bits > 0")),
)

LAVA_FIXED = Target(
    key="lava-fixed", name="Lava CPU, fixed_pt (bit-accurate Loihi)", **_LAVA_COMMON,
    weight_bits=Fig(8, "lava_notes", note="Dense clips to [-256, 255] (mixed sign) and by default drops the lowest "
                                          "bit: ternary codes need a 2^k scale, k in 1..7; Conv weights are not "
                                          "clipped"),
    state_bits=Fig(24, "lava_notes", note="u wraps, v clips to 24 bits; Conv output wraps to 24 bits"),
    decay_bits=Fig(12, "lava_notes", note="du, dv in 0..4095; u keeps (4095 - du)/4096, v keeps (4096 - dv)/4096"),
    graded_spike_bits=Fig(24, "lava_notes", note="integer graded messages; not limited to num_message_bits"),
    neuron_models=("LIF (bit-accurate Loihi CUBA)", "LIFReset", "TernaryLIF"),
    input_encodings=("graded integers (num_message_bits > 0)", "binary spikes"),
    support=Support(
        lif_current_free=Fig(True, "lava_notes", note="du = 4095 gives u = input << 6 exactly; decay 0.5 is "
                                                      "dv = 2048; per-neuron vth needs the VthLIF process"),
        ternary_weights=Fig(True, "lava_notes", note="weights 2^k x codes, k in 1..7 (or num_weight_bits = 9)"),
        conv2d=Fig(True, "lava_notes", note="integer conv, wraps at 24 bits; weight_exp ignored"),
        avg_pool=Fig(True, "lava_notes", note="sum pooling by a depthwise Conv; fold 1/k^2 into the next layer"),
        residual_add=Fig(True, "lava_notes"),
        integrator_readout=Fig("partial", "lava_notes", note="dv = 0 integrator, but v clips at 2^23 and vth must "
                                                             "stay < 2^17"),
        analog_input=Fig(True, "lava_notes", note="integer-valued graded input")),
)

LOIHI1 = Target(
    key="loihi1", name="Intel Loihi 1", mapping="cores",
    status="research chip, silicon since 2017-2018 (14 nm)",
    cores_per_chip=Fig(128, "davies2018"),
    neurons_per_core=Fig(1024, "davies2018", note="compartments per core; also nengo-loihi MAX_COMPARTMENTS"),
    synapse_memory_bits_per_core=Fig(1_048_576, "nengo_loihi",
                                     note="MAX_SYNAPSE_BITS = 16384 x 64 bits = 128 KiB; 16 MB per chip (cas2022)"),
    index_bits_per_synapse=Fig((6, 12), "nengo_loihi", note="sparse format stores a 6..12-bit target index with "
                                                            "each weight (INDEX_BITS_MAP)"),
    axon_overhead_bits=Fig(64, "nengo_loihi", note="bits_per_axon: 10 header bits per synapse block, rounded up "
                                                   "to 64-bit words; we charge one word per input axon"),
    max_in_axons_per_core=Fig(4096, "nengo_loihi", note="MAX_IN_AXONS; a neuron's inputs must all enter its core"),
    max_out_axons_per_core=Fig(4096, "nengo_loihi", note="MAX_OUT_AXONS: one per (source neuron, target core)"),
    max_fan_in=Fig(None, "nengo_loihi", note="bounded by the 4096 input axons of the neuron's core"),
    max_fan_out=Fig(None, "nengo_loihi", note="bounded by 4096 output axons per core"),
    neurons_per_chip=Fig(131_072, "wikichip_loihi"),
    synapses_per_chip=Fig(130_000_000, "wikichip_loihi"),
    max_chips=Fig(None, "davies2018", note="multi-chip systems (e.g. 768-chip Pohoiki Springs); not a limit here"),
    weight_bits=Fig(9, "davies2018", note="1-9-bit signed weights; nengo-loihi WEIGHT_BITS_MAP 1..8 + sign bit"),
    state_bits=Fig(24, "lava_notes", note="24-bit u, v (Lava's bit-accurate Loihi model)"),
    decay_bits=Fig(12, "lava_notes"),
    graded_spike_bits=Fig(0, "davies2018", note="binary spikes only"),
    neuron_models=("CUBA LIF compartments (12-bit du/dv decays)", "multi-compartment dendritic trees",
                   "refractory delay", "on-chip learning (STDP-like rules)"),
    input_encodings=("binary spikes (from the host / x86 cores)",),
    support=Support(
        lif_current_free=Fig(True, "lava_notes", note="du = 4095 makes the CUBA current = input every step"),
        ternary_weights=Fig(True, "nengo_loihi", note="1-bit magnitude + sign (mixed sign mode)"),
        conv2d=Fig(True, "nengo_loihi", note="unrolled synapses, or shared (population) axons as in nengo-loihi; "
                                             "this check counts unrolled synapses"),
        avg_pool=Fig(True, "assumption", note="folded into the next layer's synapses (linear)"),
        residual_add=Fig(True, "davies2018", note="several synapse groups into one compartment"),
        integrator_readout=Fig("partial", "nengo_loihi", note="non-spiking compartment (dv = 0); 24-bit v range"),
        analog_input=Fig(False, "davies2018", note="binary spikes only: use rate encoding or run the first layer "
                                                   "off-chip")),
)

LOIHI2 = Target(
    key="loihi2", name="Intel Loihi 2", mapping="cores",
    status="research chip, silicon since 2021 (Intel 4); per-core limits largely unpublished",
    cores_per_chip=Fig(128, "intel_loihi2"),
    neurons_per_core=Fig(8192, "wikichip_loihi2", note="1,048,576 neurons / 128 cores; the brief says 'up to' "
                                                       "1 M: the real count depends on the neuron model's state"),
    synapse_memory_bits_per_core=Fig(1_048_576, "press_loihi2", estimated=True,
                                     note="128 KB SRAM per core shared (flexibly) by synapses, neuron state and "
                                          "routing: secondary source, Intel publishes no per-core figure"),
    index_bits_per_synapse=Fig((6, 13), "assumption", estimated=True,
                               note="assumed like Loihi 1's sparse format, 13 bits to address 8192 neurons"),
    axon_overhead_bits=Fig(None, "assumption", estimated=True, note="not published; not charged"),
    max_in_axons_per_core=Fig(None, "intel_loihi2", note="not published"),
    max_out_axons_per_core=Fig(None, "intel_loihi2", note="not published"),
    max_fan_in=Fig(None, "intel_loihi2", note="not published"),
    max_fan_out=Fig(None, "intel_loihi2", note="not published"),
    neurons_per_chip=Fig(1_048_576, "wikichip_loihi2", note="'up to 1 M' in the Intel brief"),
    synapses_per_chip=Fig(120_000_000, "intel_loihi2"),
    max_chips=Fig(None, "intel_loihi2", note="multi-chip boards and systems exist; not a limit here"),
    weight_bits=Fig(8, "assumption", estimated=True,
                    note="Lava's Dense uses 8-bit weights (lava_notes); Loihi 2 per-synapse precision not confirmed"),
    state_bits=Fig(24, "lava_notes", note="Lava's LIF fixed_pt model: 24-bit u, v"),
    decay_bits=Fig(12, "lava_notes"),
    graded_spike_bits=Fig(24, "stack", estimated=True,
                          note="graded (integer) spikes; 24 bits per STACK.md, some press says 32: unconfirmed"),
    neuron_models=("microcode-programmable (LIF, CUBA LIF, resonate-and-fire, sigma-delta, ...)",),
    input_encodings=("binary spikes", "graded spikes (integer payloads)"),
    support=Support(
        lif_current_free=Fig(True, "intel_loihi2", note="programmable neurons; Lava's LIF maps as in lava_notes"),
        ternary_weights=Fig(True, "intel_loihi2"),
        conv2d=Fig(True, "intel_loihi2", note="convolutional connectivity; this check counts unrolled synapses, "
                                              "so its memory figure is an upper bound"),
        avg_pool=Fig(True, "assumption", note="folded into the next layer's synapses"),
        residual_add=Fig("partial", "stack", note="two synapse maps into one neuron work with Lava processes; "
                                                  "lava-dl netx's HDF5 has no add layer"),
        integrator_readout=Fig(True, "assumption", note="non-spiking (graded) readout neuron"),
        analog_input=Fig(True, "intel_loihi2", note="graded spikes carry the analog input")),
)

SPINNAKER2 = Target(
    key="spinnaker2", name="SpiNNaker2", mapping="cores",
    status="chip (22 nm FDSOI), boards in use; neurons are software on ARM cores",
    cores_per_chip=Fig(152, "gonzalez2024", note="processing elements (ARM Cortex-M4F); open-neuromorphic lists "
                                                 "153 ARM cores and 19 MB SRAM (= 152 x 128 kB)"),
    neurons_per_core=Fig(256, "spynnaker", estimated=True,
                         note="software-defined, no hardware limit; 256 is SpiNNaker 1's sPyNNaker limit and the "
                              "largest value in the SpiNNaker2 NIR tutorial (nir_tutorial_s2)"),
    synapse_memory_bits_per_core=Fig(1_048_576, "hoppner2021", estimated=True,
                                     note="128 kB SRAM per PE, shared with code and neuron state: an optimistic "
                                          "bound; DRAM-backed synapses not modelled"),
    index_bits_per_synapse=Fig((8, 8), "assumption", estimated=True,
                               note="assumed 8-bit target index (256 neurons per PE); py-spinnaker2's synapse "
                                    "word format not confirmed here"),
    axon_overhead_bits=Fig(None, "assumption", estimated=True, note="not modelled"),
    max_in_axons_per_core=Fig(None, "assumption", note="routing-table based, not a fixed published limit"),
    max_out_axons_per_core=Fig(None, "assumption", note="not published"),
    max_fan_in=Fig(None, "assumption", note="software"),
    max_fan_out=Fig(None, "assumption", note="multicast routing; not a fixed limit"),
    neurons_per_chip=Fig(None, "assumption", note="software-defined"),
    synapses_per_chip=Fig(None, "assumption", note="software-defined"),
    max_chips=Fig(None, "gonzalez2024", note="48-chip boards and larger systems"),
    weight_bits=Fig(None, "hoppner2021", note="software-defined; the MAC accelerator works on 8-bit operands"),
    state_bits=Fig(32, "hoppner2021", note="software (ARM with FPU); fixed or floating point"),
    decay_bits=Fig(None, "hoppner2021", note="software"),
    graded_spike_bits=Fig(None, "hoppner2021", note="packets can carry payloads; not used by py-spinnaker2's LIF"),
    neuron_models=("software: LIF, CUBA LIF and others in py-spinnaker2",),
    input_encodings=("spike times (spike_list input populations)",),
    support=Support(
        lif_current_free=Fig(True, "nir_tutorial_s2", note="from_nir with ResetMethod.ZERO, Euler-forward"),
        ternary_weights=Fig(True, "assumption", note="software weights"),
        conv2d=Fig(True, "nir2024", note="the NIR paper's spiking CNN ran on SpiNNaker2"),
        avg_pool=Fig("partial", "nir2024", note="sum pooling in the NIR CNN; average pooling not confirmed here"),
        residual_add=Fig(None, "assumption", note="not confirmed"),
        integrator_readout=Fig(None, "assumption", note="not confirmed"),
        analog_input=Fig(False, "nir_tutorial_s2", note="inputs are spike lists: rate-encode or run layer 1 "
                                                        "on the host")),
)

XYLO_AUDIO2 = Target(
    key="xylo", name="SynSense Xylo Audio 2 (SYNS61201)", mapping="single-core",
    status="product (28 nm), sub-mW audio SNN processor",
    cores_per_chip=Fig(1, "rockpool_xylo", note="one SNN core"),
    neurons_per_core=Fig(1000, "rockpool_mapper", note="hidden neurons; plus 8 output neurons"),
    synapse_memory_bits_per_core=Fig(None, "rockpool_xylo", note="expressed as fan-out limits, see max_fan_out"),
    index_bits_per_synapse=NA, axon_overhead_bits=NA,
    max_in_axons_per_core=NA, max_out_axons_per_core=NA,
    max_fan_in=Fig(None, "on_xylo", note="unconfirmed: open-neuromorphic says 63; Rockpool's (older) neuron-model "
                                         "text says each of 2 synapses receives from up to 16 pre-synaptic neurons"),
    max_fan_out=Fig(64, "rockpool_xylo", note="max fan-out 64, average 32 per synaptic state"),
    neurons_per_chip=Fig(1008, "rockpool_xylo", note="1000 hidden + 8 output"),
    synapses_per_chip=Fig(64_000, "on_xylo", estimated=True, note="secondary source (= 1000 x 64)"),
    max_chips=Fig(1, "rockpool_xylo", note="single-chip device"),
    weight_bits=Fig(8, "rockpool_xylo"),
    state_bits=Fig(16, "on_xylo"),
    decay_bits=Fig(None, "rockpool_mapper", note="bit-shift decays (dash): decay = 1 - 2^-dash, so 0.5 is exact"),
    graded_spike_bits=Fig(None, "rockpool_xylo", note="up to 15 input events per step per channel, up to 31 "
                                                      "output events per step per hidden neuron"),
    neuron_models=("CUBA LIF, bit-shift decays, 2 synaptic states, subtractive reset",),
    input_encodings=("16 event channels (audio front-end / spikes)",),
    max_input_channels=Fig(16, "rockpool_xylo"),
    max_output_neurons=Fig(8, "rockpool_mapper"),
    support=Support(
        lif_current_free=Fig("partial", "rockpool_xylo", note="decay 0.5 is an exact bit shift, but reset is "
                                                              "subtractive (ours: to zero)"),
        ternary_weights=Fig(True, "rockpool_xylo", note="8-bit weights"),
        conv2d=Fig(False, "rockpool_xylo", note="dense input/recurrent/output matrices only"),
        avg_pool=Fig(True, "assumption", note="folded into the next layer's weights"),
        residual_add=Fig(True, "rockpool_xylo", note="arbitrary (incl. residual) architectures"),
        integrator_readout=Fig("partial", "rockpool_xylo", note="output neurons are LIF neurons"),
        analog_input=Fig(False, "rockpool_xylo", note="spike-count inputs on 16 channels")),
)

SPECK = Target(
    key="speck", name="SynSense Speck / DYNAP-CNN", mapping="layer-per-core",
    status="product (DVS + DYNAP-CNN processor on one chip)",
    cores_per_chip=Fig(9, "sinabs_overview", note="each core is one conv -> IAF -> sum-pool layer"),
    neurons_per_core=Fig(None, "sinabs_constraints", note="per-core neuron memory, see core_neuron_memory"),
    synapse_memory_bits_per_core=Fig(None, "sinabs_constraints", note="per-core kernel memory, see "
                                                                      "core_kernel_memory (8-bit entries)"),
    index_bits_per_synapse=NA, axon_overhead_bits=NA,
    max_in_axons_per_core=NA, max_out_axons_per_core=NA,
    max_fan_in=Fig(None, "sinabs_overview", note="bounded by kernel size and channels"),
    max_fan_out=Fig(None, "sinabs_overview", note="per layer: 2 destination cores (max_destinations)"),
    neurons_per_chip=Fig(327_680, "sinabs_constraints", note="sum of the 9 cores' neuron memories (0.32 M)"),
    synapses_per_chip=NA,
    max_chips=Fig(1, "sinabs_overview", note="single-chip device"),
    weight_bits=Fig(8, "sinabs_overview"),
    state_bits=Fig(16, "sinabs_overview"),
    decay_bits=Fig(None, "sinabs_overview", note="no multiplicative decay: leak is a constant per slow-clock tick"),
    graded_spike_bits=Fig(0, "sinabs_overview", note="events"),
    neuron_models=("IAF (non-leaky integrate-and-fire) with optional constant leak, reset to zero or subtract",),
    input_encodings=("DVS events (on-chip sensor or external)", "spike events"),
    core_kernel_memory=Fig((16384, 16384, 16384, 32768, 32768, 65536, 65536, 16384, 16384), "sinabs_constraints",
                           note="kernel memory entries per core; need c * 2^(ceil log2(kx ky) + ceil log2 f)"),
    core_neuron_memory=Fig((65536, 65536, 65536, 32768, 32768, 16384, 16384, 16384, 16384), "sinabs_constraints",
                           note="neuron memory entries per core; need f * 2^(ceil log2 h + ceil log2 w)"),
    max_kernel_size=Fig(16, "sinabs_overview", note="square kernels only"),
    strides=Fig((1, 2, 4, 8), "sinabs_overview"),
    max_padding=Fig(7, "sinabs_overview"),
    max_channels=Fig(1024, "sinabs_overview"),
    max_input_size=Fig(128, "sinabs_overview"),
    max_output_map=Fig(64, "sinabs_overview"),
    max_destinations=Fig(2, "sinabs_faq"),
    support=Support(
        lif_current_free=Fig(False, "sinabs_overview", note="IAF neurons: no multiplicative leak (ours decays "
                                                            "by 0.5 per step)"),
        ternary_weights=Fig(True, "sinabs_overview", note="8-bit weights"),
        conv2d=Fig(True, "sinabs_overview"),
        avg_pool=Fig("partial", "sinabs_overview", note="sum pooling 1/2/4 on a core's output; other windows must "
                                                        "be folded into the next kernel"),
        residual_add=Fig("partial", "sinabs_faq", note="two cores into one destination (channel shift to "
                                                       "concatenate), set by hand in samna; sources of different "
                                                       "resolution cannot share a kernel"),
        integrator_readout=Fig("partial", "sinabs_faq", note="readout layer counts spikes, fewer than 15 classes"),
        analog_input=Fig(False, "sinabs_overview", note="event input only")),
)

TARGETS: tuple[Target, ...] = (LAVA_FLOAT, LAVA_FIXED, LOIHI2, LOIHI1, SPINNAKER2, XYLO_AUDIO2, SPECK)
