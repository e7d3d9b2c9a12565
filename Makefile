# The two things a new user runs: `make demo` and `make test`. Both set up first (idempotent).
PY      := .venv/bin/python
RUN     ?= runs/demo

.PHONY: setup demo test clean-demo

setup:
	@bash scripts/setup_envs.sh

# The main job on the bundled digits: train a ternary TNA spiking network, export it to NIR, run
# it on Lava in floating and fixed point, verify every spike, and report spikes/energy/memory.
demo: setup
	@if [ -f $(RUN)/metrics.json ]; then echo "$(RUN) is already trained (make clean-demo to retrain)"; \
	 else $(PY) -m tna.cli train --out $(RUN); fi
	$(PY) -m tna.cli deploy $(RUN) --mode both --samples 16
	$(PY) -m tna.cli report $(RUN)

test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 tests

clean-demo:
	rm -rf $(RUN)
