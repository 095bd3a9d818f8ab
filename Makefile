# bnrepro: one command per figure. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    := $(BIN)/python

# Where the data is: BNREPRO_DATA if set, else ../shared/datasets beside this checkout, else ./data (the same rule
# for `python experiments/train.py`: src/bnrepro/paths.py).

seeds ?= 1
SEED_LIST := $(shell seq -s, 0 $$(( $(seeds) - 1 )))
ARGS ?=
# full=1: the CIFAR experiments' full protocol (full-width VGG, the paper's step counts; meant for a GPU) instead
# of the configuration a CPU runs in minutes.
full ?=
# Every make target sweeps into its own folder: runs/<experiment>/make_<time>/.
STARTED := $(shell date +%Y-%m-%d_%H-%M-%S)
SWEEP = $(RUN) experiments/train.py -m hydra/launcher=parallel seed=$(SEED_LIST)
COLLECT = $(RUN) experiments/collect.py
FIGURES = $(RUN) experiments/figures.py

# CIFAR-10: in this workplace only unofficial copies exist (README, CIFAR-10), used knowingly: the small CPU
# configuration on the pixel-exact subset, the full protocol on the full-size lossy copy. Elsewhere: the official data.
CIFAR_SMALL_DATA ?= $(if $(wildcard ../shared/datasets/cifar-10-batches-py),data.allow_unofficial=true,)
CIFAR_FULL_DATA ?= $(if $(wildcard ../shared/datasets/cifar10-LOSSY-approx),data.archive=cifar10-LOSSY-approx/cifar-10-python-LOSSY-jpeg75-approx.tar.xz data.allow_unofficial=true,)
CIFAR_DATA = $(if $(full),$(CIFAR_FULL_DATA),$(CIFAR_SMALL_DATA))

.PHONY: help install mnist-bn mnist-lr-sweep cifar-bn ics landscape dln lp-norm figures report notebooks bench test \
	test-slow clean

help: ## list the targets
	@echo "bnrepro targets (variables: seeds=N runs seeds 0..N-1; full=1 the CIFAR experiments' full protocol, for a"
	@echo "GPU; ARGS='hydra overrides'). Each experiment's grid is in configs/experiment/<name>.yaml (hydra.sweeper.params)."
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies (run by every target that needs it)

mnist-bn: $(STAMP) ## MNIST MLP with and without BN (article Figs 2-4) -> results/mnist_bn/
	$(SWEEP) experiment=mnist_bn hydra.sweep.dir=runs/mnist_bn/make_$(STARTED) $(ARGS)
	$(COLLECT) runs/mnist_bn/make_$(STARTED) --out results/mnist_bn
	$(FIGURES) mnist_bn

mnist-lr-sweep: $(STAMP) ## final test accuracy vs learning rate, with and without BN -> results/mnist_lr_sweep/
	$(SWEEP) experiment=mnist_lr_sweep hydra.sweep.dir=runs/mnist_lr_sweep/make_$(STARTED) $(ARGS)
	$(COLLECT) runs/mnist_lr_sweep/make_$(STARTED) --out results/mnist_lr_sweep
	$(FIGURES) mnist_lr_sweep

cifar-bn: $(STAMP) ## CIFAR-10 VGG: standard, BN, noisy BN at lr 0.1 and 0.5 (Santurkar Figs 1, 2, 8) -> results/cifar_bn/
	$(SWEEP) experiment=$(if $(full),cifar_bn,cifar_bn_small) $(CIFAR_DATA) hydra.sweep.dir=runs/cifar_bn/make_$(STARTED) $(ARGS)
	$(COLLECT) runs/cifar_bn/make_$(STARTED) --out results/cifar_bn
	$(FIGURES) cifar_bn

ics: $(STAMP) ## internal covariate shift, VGG standard vs BN, lr 0.1 and 0.01 (Santurkar Fig 3) -> results/ics/
	$(SWEEP) experiment=$(if $(full),ics_full,ics) $(CIFAR_DATA) hydra.sweep.dir=runs/ics/make_$(STARTED) $(ARGS)
	$(COLLECT) runs/ics/make_$(STARTED) --out results/ics
	$(FIGURES) ics

landscape: $(STAMP) ## loss landscape along the gradient, VGG standard vs BN (Santurkar Figs 4, 11) -> results/landscape/
	$(SWEEP) experiment=$(if $(full),landscape_full,landscape) $(CIFAR_DATA) hydra.sweep.dir=runs/landscape/make_$(STARTED) $(ARGS)
	$(COLLECT) runs/landscape/make_$(STARTED) --out results/landscape
	$(FIGURES) landscape

lp-norm: $(STAMP) ## VGG standard vs BN vs l1/l2/linf normalisation (Santurkar Figs 5, 6, 12) -> results/lp_norm/
	$(SWEEP) experiment=$(if $(full),lp_norm_full,lp_norm) $(CIFAR_DATA) hydra.sweep.dir=runs/lp_norm/make_$(STARTED) $(ARGS)
	$(COLLECT) runs/lp_norm/make_$(STARTED) --out results/lp_norm
	$(FIGURES) lp_norm

dln: $(STAMP) ## 25-layer deep linear network, every normalisation (Santurkar Figs 3b, 5, 10, 11, 13) -> results/dln/
	$(SWEEP) experiment=dln hydra.sweep.dir=runs/dln/make_$(STARTED)/lr1e-6 $(ARGS)
	$(SWEEP) experiment=dln_lr1e-7 hydra.sweep.dir=runs/dln/make_$(STARTED)/lr1e-7 $(ARGS)
	$(COLLECT) runs/dln/make_$(STARTED) --out results/dln
	$(FIGURES) dln

figures: $(STAMP) ## redraw every figure from stored metrics in results/ (no training)
	$(RUN) experiments/figures.py

report: $(STAMP) ## results/REPORT.md: every claim of configs/claims.yaml judged from the stored metrics (no training)
	$(RUN) experiments/report.py

notebooks: $(STAMP) ## install Jupyter (the optional `notebooks` extra) when missing, and open notebooks/
	@$(RUN) -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP) ## speed figures (MNIST, CIFAR, landscape probe) -> results/bench/*.json (~15 minutes)
	$(RUN) benchmarks/bench.py

test: $(STAMP) ## the test suite (what CI runs), slow tests excluded
	$(BIN)/pytest -m "not slow" -q

test-slow: $(STAMP) ## every test, the slow ones too
	$(BIN)/pytest -q

clean: ## remove run folders (runs/) and caches; keeps results/ and .venv
	rm -rf runs .pytest_cache
