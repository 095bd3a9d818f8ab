# bnrepro: one command per figure. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    := $(BIN)/python

# The data root: BNREPRO_DATA if set, else the offline copies beside this checkout, else ./data.
BNREPRO_DATA ?= $(if $(wildcard ../shared/datasets/MNIST/raw),$(abspath ../shared/datasets),data)
export BNREPRO_DATA

, := ,
seeds ?= 1
SEED_LIST := $(shell seq -s, 0 $$(( $(seeds) - 1 )))
ARGS ?=

# CIFAR-10: in this workplace only unofficial copies exist (README, CIFAR-10), used knowingly: the small CPU
# configuration on the pixel-exact subset, the full protocol on the full-size lossy copy. Elsewhere: the official data.
CIFAR_SMALL_DATA ?= $(if $(wildcard ../shared/datasets/cifar-10-batches-py),data.allow_unofficial=true,)
CIFAR_FULL_DATA ?= $(if $(wildcard ../shared/datasets/cifar10-LOSSY-approx),data.archive=cifar10-LOSSY-approx/cifar-10-python-LOSSY-jpeg75-approx.tar.xz data.allow_unofficial=true,)

.PHONY: help install mnist-bn mnist-lr-sweep cifar-bn ics landscape dln lp-norm figures report notebooks bench test \
	test-slow clean

help: ## list the targets
	@echo "bnrepro targets (variables: seeds=N runs seeds 0..N-1, ARGS='hydra overrides'):"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies (run by every target that needs it)

mnist-bn: $(STAMP) ## MNIST MLP with and without BN (article Figs 2-4) -> results/mnist_bn/ [seeds=1]
	@set -e; dir=runs/mnist_bn/make_$$(date +%Y-%m-%d_%H-%M-%S); start=$$(date +%s%N); \
	$(RUN) experiments/train.py -m experiment=mnist_bn model.norm=none,batch seed=$(SEED_LIST) \
		hydra/launcher=parallel hydra.sweep.dir=$$dir $(ARGS); \
	ms=$$(( ($$(date +%s%N) - start) / 1000000 )); \
	echo "training wall time: $$((ms / 1000)).$$(printf %03d $$((ms % 1000))) s (all jobs, $$dir)"; \
	$(RUN) experiments/collect.py $$dir --out results/mnist_bn; \
	$(RUN) experiments/figures.py mnist_bn

mnist-lr-sweep: $(STAMP) ## final test accuracy vs learning rate, with and without BN -> results/mnist_lr_sweep/
	@set -e; dir=runs/mnist_lr_sweep/make_$$(date +%Y-%m-%d_%H-%M-%S); \
	$(RUN) experiments/train.py -m experiment=mnist_lr_sweep seed=$(SEED_LIST) hydra/launcher=parallel \
		hydra.sweep.dir=$$dir $(ARGS); \
	$(RUN) experiments/collect.py $$dir --out results/mnist_lr_sweep; \
	$(RUN) experiments/figures.py mnist_lr_sweep

# $(call on_gpu_or_cpu,SMALL,FULL): experiment FULL (the full protocol, on the full-size data) on a GPU, SMALL (the
# CPU configuration, on the subset) otherwise; sets the shell variables exp and data.
define on_gpu_or_cpu
if $(RUN) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then \
	exp=$(2); data="$(CIFAR_FULL_DATA)"; echo "GPU found: the full protocol (experiment=$(2))"; \
else \
	exp=$(1); data="$(CIFAR_SMALL_DATA)"; \
	echo "No GPU: the small CPU configuration (experiment=$(1)); the full protocol is experiment=$(2), on a GPU"; \
fi
endef

# $(call sweep,NAME,OVERRIDES): one multirun into runs/NAME/make_<time>/ (several when OVERRIDES holds
# `;`-separated groups, one subfolder each), then results/NAME/ and its figures.
define sweep
dir=runs/$(1)/make_$$(date +%Y-%m-%d_%H-%M-%S); start=$$(date +%s); i=0; \
IFS=';' read -ra groups <<< "$(2)"; for g in "$${groups[@]}"; do \
	$(RUN) experiments/train.py -m $$g seed=$(SEED_LIST) hydra/launcher=parallel hydra.sweep.dir=$$dir/$$i $(ARGS); \
	i=$$((i + 1)); \
done; \
echo "training wall time: $$(( $$(date +%s) - start )) s (all jobs, $$dir)"; \
$(RUN) experiments/collect.py $$dir --out results/$(1); \
$(RUN) experiments/figures.py $(1)
endef

cifar-bn: $(STAMP) ## CIFAR-10 VGG: standard, BN, noisy BN at lr 0.1 and 0.5 (Santurkar Figs 1, 2, 8) -> results/cifar_bn/
	@set -e; $(call on_gpu_or_cpu,cifar_bn_small,cifar_bn); \
	$(call sweep,cifar_bn,experiment=$$exp model.norm=none$(,)batch$(,)noisy_batch optim.lr=0.1$(,)0.5 $$data)

ics: $(STAMP) ## internal covariate shift, VGG standard vs BN, lr 0.1 and 0.01 (Santurkar Fig 3) -> results/ics/
	@set -e; $(call on_gpu_or_cpu,ics,ics_full); \
	$(call sweep,ics,experiment=$$exp model.norm=none$(,)batch optim.lr=0.1$(,)0.01 $$data)

landscape: $(STAMP) ## loss landscape along the gradient, VGG standard vs BN (Santurkar Figs 4, 11) -> results/landscape/
	@set -e; $(call on_gpu_or_cpu,landscape,landscape_full); \
	$(call sweep,landscape,experiment=$$exp model.norm=none$(,)batch $$data)

lp-norm: $(STAMP) ## VGG standard vs BN vs l1/l2/linf normalisation (Santurkar Figs 5, 6, 12) -> results/lp_norm/
	@set -e; $(call on_gpu_or_cpu,lp_norm,lp_norm_full); \
	$(call sweep,lp_norm,experiment=$$exp model.norm=none$(,)batch$(,)l1$(,)l2$(,)linf $$data)

dln: $(STAMP) ## 25-layer deep linear network, every normalisation (Santurkar Figs 3b, 5, 10, 11, 13) -> results/dln/
	@set -e; $(call sweep,dln,experiment=dln model.norm=none$(,)batch$(,)noisy_batch$(,)l1$(,)l2$(,)linf optim.lr=1e-6;experiment=dln model.norm=none$(,)batch optim.lr=1e-7)

figures: $(STAMP) ## redraw every figure from stored metrics in results/ (no training)
	$(RUN) experiments/figures.py

report: $(STAMP) ## results/REPORT.md: every claim of configs/claims.yaml judged from the stored metrics (no training)
	$(RUN) experiments/report.py

notebooks: $(STAMP) ## install Jupyter (the optional `notebooks` extra) when missing, and open notebooks/
	@$(RUN) -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP) ## speed figures (MNIST, CIFAR, landscape probe, worker contention) -> results/bench/*.json (~17 minutes)
	$(RUN) experiments/bench.py

test: $(STAMP) ## the test suite (what CI runs), slow tests excluded
	$(BIN)/pytest -m "not slow" -q

test-slow: $(STAMP) ## every test, the slow ones too
	$(BIN)/pytest -q

clean: ## remove run folders (runs/) and caches; keeps results/ and .venv
	rm -rf runs .pytest_cache
