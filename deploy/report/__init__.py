"""What a deployed network costs: operation counts from spikes (accounting), energy models (energy),
hardware targets as data (targets), resources per layer (resources), their fit on each target
(fit), and `tna report` (report). All read graphs through deploy/graph/read.py."""
