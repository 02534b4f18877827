# Two commands set up a fresh machine: `make demo` and `make test`. Installs are skipped when present.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
RUN := PATH=$(CURDIR)/$(VENV)/bin:$$PATH
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
R_DEBS := r-base-core r-base-dev r-cran-brms r-cran-rstanarm r-cran-posterior r-cran-yaml r-cran-jsonlite \
          r-cran-data.table r-cran-testthat r-cran-loo r-cran-matrixstats r-cran-digest
R_PKGS := rstanarm brms posterior yaml jsonlite data.table matrixStats digest testthat loo
# Debian's BH ships no headers; brms compiles need Boost where BH would put it.
BH_BOOST := /usr/lib/R/site-library/BH/include/boost
CORES ?= 2

.PHONY: install r-deps py-deps demo test test-fast bench serve bench-serve lint clean

install: r-deps py-deps

r-deps:
	@if command -v Rscript >/dev/null && Rscript -e 'for (p in strsplit("$(R_PKGS)", " ")[[1]]) suppressMessages(library(p, character.only = TRUE))' >/dev/null 2>&1; then \
	  echo "R packages: present"; \
	else \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(R_DEBS); \
	fi
	@test -e $(BH_BOOST) || { $(SUDO) mkdir -p $(dir $(BH_BOOST)) && $(SUDO) ln -sf /usr/include/boost $(BH_BOOST); }

py-deps: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

demo: install
	$(RUN) snakemake --cores $(CORES)
	@$(RUN) bayeslift summary results/summary.json
	@echo "  report: results/report/index.html (open in a browser)"

test: install
	$(RUN) pytest -q

test-fast: install
	$(RUN) pytest -q -m "not rpy2 and not e2e"

bench: install
	$(RUN) python bench/bench_pipeline.py

serve: install
	$(RUN) bayeslift serve --model results/surrogate --port 8080

bench-serve: install
	$(RUN) python bench/bench_serve.py

lint: install
	$(RUN) snakemake --lint

clean:
	rm -rf results logs .snakemake

# Evaluation benchmark (issue 4): Hillstrom Qini gain over paired splits + simulator sqrt-PEHE. BENCH_EVAL_ARGS
# overrides the defaults, e.g. BENCH_EVAL_ARGS="--splits 20 --sample-n 20000 --bayes-splits 2 --n-jobs 1".
BENCH_EVAL_ARGS ?=
.PHONY: bench-eval
bench-eval: install
	$(RUN) python bench/bench_eval.py $(BENCH_EVAL_ARGS)

# Scaling (issue 6): a one-node SLURM cluster on localhost runs the tiny pipeline through profiles/slurm
# (installs slurm + munge from Debian when missing; needs root or sudo), and the scale benchmark.
.PHONY: test-cluster bench-scale
test-cluster: install
	$(RUN) bash tests/cluster/run_cluster_test.sh

BENCH_SCALE_ARGS ?=
bench-scale: install
	$(RUN) python bench/bench_scale.py $(BENCH_SCALE_ARGS)

# Accuracy benchmark (issue 7): every simulator scenario, 10 samples each, the default model and
# config/accurate.yaml's (bench variant auto_normal_df5) and their surrogates vs the baselines, on held-out
# users: the README's table (~55 min). BENCH_ACCURACY_ARGS overrides, e.g. "--bayes-models default horseshoe".
BENCH_ACCURACY_ARGS ?= --seed 101 --replications 10 --bayes-models default auto_normal_df5
# causalml's X-/DR-learners are peers of the benchmark only: a throwaway install outside the venv.
CAUSALML_TARGET ?= /tmp/causalml_target
.PHONY: bench-accuracy
bench-accuracy: install
	[ -d $(CAUSALML_TARGET)/causalml ] || $(PY) -m pip install -q --target $(CAUSALML_TARGET) causalml
	$(RUN) python bench/bench_accuracy.py --causalml-path $(CAUSALML_TARGET) $(BENCH_ACCURACY_ARGS)
