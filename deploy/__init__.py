"""deploy: a trained tna network -> NIR -> Lava (floating_pt, bit-accurate fixed_pt) -> verified, reported.

    export_nir.py, lava_run.py   the two scripts (training env, Lava env), thin
    pipeline.py                  export -> Lava per mode -> verify: what `tna deploy` runs
    verify.py, files.py          spike-by-spike comparison; the files the steps exchange
    graph/                       NIR: from the model, THE reader, the plan, the float reference
    loihi/                       Loihi's integers: the mapping, the one integer simulator
    lavanet/                     the plan as Lava processes (Lava env), and running Lava from training
    report/                      counts, energy, resources and hardware fit

Dependencies point down this list (docs/layout.md); what runs in the Lava environment imports no torch.
"""
