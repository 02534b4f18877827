# Two commands set up a fresh machine: `make demo` and `make test`. Installs are skipped when present.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The R package bayeslift (R/bayeslift) is installed into a project library, R/.rlib: the rule scripts find
# it beside them, and R_LIBS points everything run from here (tests, benchmarks) at it.
RLIB := R/.rlib
R_PKG := R/bayeslift
R_PKG_SOURCES := $(wildcard $(R_PKG)/R/*.R) $(wildcard $(R_PKG)/inst/stan/*.stan) $(R_PKG)/DESCRIPTION $(R_PKG)/NAMESPACE
RUN := PATH=$(CURDIR)/$(VENV)/bin:$$PATH R_LIBS=$(CURDIR)/$(RLIB)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
R_DEBS := r-base-core r-base-dev r-cran-brms r-cran-rstanarm r-cran-posterior r-cran-yaml r-cran-jsonlite \
          r-cran-data.table r-cran-testthat r-cran-loo r-cran-matrixstats r-cran-digest r-cran-roxygen2
R_PKGS := rstanarm brms posterior yaml jsonlite data.table matrixStats digest testthat loo roxygen2
# Debian's BH ships no headers; brms compiles need Boost where BH would put it.
BH_BOOST := /usr/lib/R/site-library/BH/include/boost
CORES ?= 2

.PHONY: install r-deps r-pkg py-deps demo test test-fast r-test r-docs r-check bench serve bench-serve lint clean

install: r-deps r-pkg py-deps

r-deps:
	@if command -v Rscript >/dev/null && Rscript -e 'for (p in strsplit("$(R_PKGS)", " ")[[1]]) suppressMessages(library(p, character.only = TRUE))' >/dev/null 2>&1; then \
	  echo "R packages: present"; \
	else \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(R_DEBS); \
	fi
	@test -e $(BH_BOOST) || { $(SUDO) mkdir -p $(dir $(BH_BOOST)) && $(SUDO) ln -sf /usr/include/boost $(BH_BOOST); }

# Reinstalled whenever a package source changes; SOURCES.md5 is also what the rule scripts compare their
# `rlib` inputs with (check_installed_sources()), so an edit that was not installed stops the pipeline.
r-pkg: $(RLIB)/bayeslift/SOURCES.md5

$(RLIB)/bayeslift/SOURCES.md5: $(R_PKG_SOURCES) | r-deps
	mkdir -p $(RLIB)
	R CMD INSTALL --no-multiarch --library=$(RLIB) $(R_PKG)
	# backend stan's program, compiled once here so that no pipeline job compiles it (or two at once)
	R_LIBS=$(CURDIR)/$(RLIB) Rscript -e 'invisible(bayeslift::stan_part_model())'
	(cd $(R_PKG) && md5sum R/*.R) > $@

# NAMESPACE and man/ are generated from the roxygen headers and committed (no roxygen run at install time).
r-docs:
	Rscript -e 'roxygen2::roxygenise("$(R_PKG)")'

# The testthat suite against the installed package (no-fit unit tests and one tiny cached fit, ~1-2 min).
r-test: r-pkg
	$(RUN) Rscript -e 'testthat::test_dir("$(R_PKG)/tests/testthat", package = "bayeslift", load_package = "installed", stop_on_failure = TRUE)'

# R CMD build + R CMD check --no-manual in a scratch folder (runs the testthat suite once more).
R_CHECK_DIR ?= /tmp/bayeslift_r_check
r-check: r-deps
	rm -rf $(R_CHECK_DIR) && mkdir -p $(R_CHECK_DIR)
	cd $(R_CHECK_DIR) && R CMD build --no-build-vignettes $(CURDIR)/$(R_PKG) && \
	  _R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual bayeslift_*.tar.gz

py-deps: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

demo: install
	$(RUN) snakemake --cores $(CORES) --config presets=demo
	@$(RUN) bayeslift summary results/summary.json
	@echo "  report: results/report/index.html (open in a browser)"

# --durations: the slowest tests are printed, so that CI's log shows where the suite's time goes
test: install r-test
	$(RUN) pytest -q --durations=40

test-fast: install
	$(RUN) pytest -q -m "not rpy2 and not e2e"

# Benchmarks write $(BENCH_OUT)/<benchmark>.json (figures + command, commit, date, machine, load): scratch by
# default; BENCH_OUT=docs/bench writes the committed reference outputs that `make docs` renders.
BENCH_OUT ?= bench/results
BENCH_PIPELINE_ARGS ?=
BENCH_SERVE_ARGS ?=
bench: install
	$(RUN) python bench/bench_pipeline.py $(BENCH_PIPELINE_ARGS) --out $(BENCH_OUT)/bench_pipeline.json

serve: install
	$(RUN) bayeslift serve --model results/surrogate --port 8080

bench-serve: install
	$(RUN) python bench/bench_serve.py $(BENCH_SERVE_ARGS) --out $(BENCH_OUT)/bench_serve.json

lint: install
	$(RUN) snakemake --lint --config presets=demo

clean:
	rm -rf results logs .snakemake

# Evaluation benchmark (issue 4): Hillstrom Qini gain over paired splits + simulator sqrt-PEHE. BENCH_EVAL_ARGS
# overrides the defaults, e.g. BENCH_EVAL_ARGS="--splits 20 --sample-n 20000 --bayes-splits 2 --n-jobs 1".
# Then Hillstrom's three arms (issue 25): AIPW profit per 1,000 customers of bayeslift's best-arm rule vs
# treat-all-with-the-best-average-arm vs causalml's multi-treatment learners (installed outside the venv, as
# for bench-accuracy), e.g. BENCH_EVAL_ARMS_ARGS="--splits 20 --train-n 10000 --bayes-iter 1000".
BENCH_EVAL_ARGS ?=
BENCH_EVAL_ARMS_ARGS ?=
.PHONY: bench-eval
bench-eval: install
	$(RUN) python bench/bench_eval.py $(BENCH_EVAL_ARGS) --out $(BENCH_OUT)/bench_eval.json
	[ -d $(CAUSALML_TARGET)/causalml ] || $(PY) -m pip install -q --target $(CAUSALML_TARGET) causalml
	$(RUN) python bench/bench_eval_arms.py --causalml-path $(CAUSALML_TARGET) $(BENCH_EVAL_ARMS_ARGS) \
		--out $(BENCH_OUT)/bench_eval_arms.json

# Scaling (issue 6): a one-node SLURM cluster on localhost runs the tiny pipeline through profiles/slurm
# (installs slurm + munge from Debian when missing; needs root or sudo), and the scale benchmark.
.PHONY: test-cluster bench-scale
test-cluster: install
	$(RUN) bash tests/cluster/run_cluster_test.sh

BENCH_SCALE_ARGS ?=
bench-scale: install
	$(RUN) python bench/bench_scale.py $(BENCH_SCALE_ARGS) --out $(BENCH_OUT)/bench_scale.json

# The whole pipeline with the default settings on the 64,000-customer Hillstrom experiment (issue 23: within
# 10 minutes on 2 cores): wall time per stage, from an empty folder.
.PHONY: bench-end-to-end
bench-end-to-end: install
	$(RUN) python bench/bench_end_to_end.py --out $(BENCH_OUT)/bench_end_to_end.json

# Accuracy benchmark (issues 7, 23): the simulator's scenarios and the semi-synthetic Hillstrom ones
# (bench/semisynthetic.py; needs ../shared/data/hillstrom.csv) at 3,000 and 20,000 training users, the default
# model (backend stan) and the former default (rstanarm) and their surrogates vs the baselines, causalml and
# stochtree BCF, on held-out users, sampled as config.yaml's model.inference.iter says. BENCH_ACCURACY_ARGS overrides, e.g. "--suite hillstrom --sizes 3000".
BENCH_ACCURACY_ARGS ?= --suite all --sizes 3000 20000 --replications 10 3 --seed 101 --bayes-models default rstanarm
# causalml's X-/DR-learners and stochtree's BCF are peers of the benchmark only: throwaway installs outside the venv.
CAUSALML_TARGET ?= /tmp/causalml_target
STOCHTREE_TARGET ?= /tmp/stochtree_target
.PHONY: bench-accuracy
bench-accuracy: install
	[ -d $(CAUSALML_TARGET)/causalml ] || $(PY) -m pip install -q --target $(CAUSALML_TARGET) causalml
	[ -d $(STOCHTREE_TARGET)/stochtree ] || $(PY) -m pip install -q --target $(STOCHTREE_TARGET) stochtree
	$(RUN) python bench/bench_accuracy.py --causalml-path $(CAUSALML_TARGET) --stochtree-path $(STOCHTREE_TARGET) $(BENCH_ACCURACY_ARGS) \
	  --out $(BENCH_OUT)/bench_accuracy.json

# Tables between <!-- generated: NAME --> markers in README.md and docs/*.md, from config/ and docs/bench/.
.PHONY: docs
docs: py-deps
	$(PY) docs/generate_tables.py
