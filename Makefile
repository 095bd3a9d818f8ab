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
# A target's runs go to runs/make/<name>-<settings>/<job>: the same command finds them again, so it skips the jobs
# that finished and resumes the ones that were interrupted (fresh=1 starts over in a new folder).
TAG := seeds$(seeds)$(if $(full),-full)$(if $(ARGS),-$(shell printf '%s' "$(ARGS)" | sha256sum | cut -c1-8))$(if $(fresh),-$(shell date +%Y-%m-%d_%H-%M-%S))
# The committed reference results (results/<name>/) were made at the configs' settings with REF_SEEDS seeds: 5 for
# the MLP experiments, whose runs take minutes, 10 for the deep linear network (its seeds vary its data, and at lr
# 1e-6 half of the standard network's runs diverge), 3 for the VGG's. A target run at other settings writes
# results/<name>-<settings>/ instead, unless replace=1 says to replace the reference.
REF_SEEDS := 3
MINUTE_TARGETS := mnist-bn mnist-ioffe mnist-lr-sweep mnist-norm-position mnist-layernorm mnist-affine \
	mnist-batch-size mnist-shift
$(MINUTE_TARGETS): REF_SEEDS := 5
dln: REF_SEEDS := 10
SUFFIX = $(if $(or $(replace),$(and $(filter $(REF_SEEDS),$(seeds)),$(if $(ARGS)$(full),,yes))),,-$(TAG))
SWEEP = $(RUN) experiments/train.py -m hydra/launcher=parallel seed=$(SEED_LIST)
COLLECT = $(RUN) experiments/collect.py
FIGURES = $(RUN) experiments/figures.py

# CIFAR-10: in this workplace only unofficial copies exist (README, CIFAR-10), used knowingly: the small CPU
# configuration on the pixel-exact subset, the full protocol on the full-size lossy copy. Elsewhere: the official data.
CIFAR_SMALL_DATA ?= $(if $(wildcard ../shared/datasets/cifar-10-batches-py),data.allow_unofficial=true,)
CIFAR_FULL_DATA ?= $(if $(wildcard ../shared/datasets/cifar10-LOSSY-approx),data.archive=cifar10-LOSSY-approx/cifar-10-python-LOSSY-jpeg75-approx.tar.xz data.allow_unofficial=true,)
CIFAR_DATA = $(if $(full),$(CIFAR_FULL_DATA),$(CIFAR_SMALL_DATA))

.PHONY: help install mnist-bn mnist-ioffe mnist-lr-sweep mnist-norm-position mnist-layernorm mnist-affine mnist-batch-size mnist-shift cifar-bn cifar-bn-cpu cifar-probes-cpu cifar-norm-variants cifar-higher-lr ics landscape dln lp-norm figures report search-dln-scale search-mnist-ioffe notebooks bench test \
	test-all lint clean

help: ## list the targets
	@echo "bnrepro targets. Variables: seeds=N runs seeds 0..N-1; full=1 the CIFAR experiments' full protocol (for a GPU);"
	@echo "ARGS='hydra overrides'; fresh=1 new run folders; replace=1 lets other settings replace the reference results"
	@echo "(results/<name>/, made with seeds=5 for the MLP and the deep linear network, seeds=3 for the VGG; other settings"
	@echo "write results/<name>-<settings>/)."
	@echo "Each experiment's grid is in configs/experiment/<name>.yaml (hydra.sweeper.params)."
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies (run by every target that needs it)

mnist-bn: $(STAMP) ## MNIST MLP with and without BN (article Figs 2-4) -> results/mnist_bn/
	$(SWEEP) experiment=mnist_bn hydra.sweep.dir=runs/make/mnist_bn-$(TAG) $(ARGS)
	$(COLLECT) runs/make/mnist_bn-$(TAG) --out results/mnist_bn$(SUFFIX)
	$(FIGURES) mnist_bn$(SUFFIX)

mnist-ioffe: $(STAMP) ## MNIST MLP at the settings Ioffe & Szegedy's curves imply (make search-mnist-ioffe) -> results/mnist_ioffe/
	$(SWEEP) experiment=mnist_ioffe hydra.sweep.dir=runs/make/mnist_ioffe-$(TAG) $(ARGS)
	$(COLLECT) runs/make/mnist_ioffe-$(TAG) --out results/mnist_ioffe$(SUFFIX)
	$(FIGURES) mnist_ioffe$(SUFFIX)

mnist-lr-sweep: $(STAMP) ## final test accuracy vs learning rate, with and without BN -> results/mnist_lr_sweep/
	$(SWEEP) experiment=mnist_lr_sweep hydra.sweep.dir=runs/make/mnist_lr_sweep-$(TAG) $(ARGS)
	$(COLLECT) runs/make/mnist_lr_sweep-$(TAG) --out results/mnist_lr_sweep$(SUFFIX)
	$(FIGURES) mnist_lr_sweep$(SUFFIX)

mnist-norm-position: $(STAMP) ## MNIST MLP, BN before vs after each sigmoid (article §C.2.6) -> results/mnist_norm_position/
	$(SWEEP) experiment=mnist_norm_position hydra.sweep.dir=runs/make/mnist_norm_position-$(TAG) $(ARGS)
	$(COLLECT) runs/make/mnist_norm_position-$(TAG) --out results/mnist_norm_position$(SUFFIX)
	$(FIGURES) mnist_norm_position$(SUFFIX)

mnist-layernorm: $(STAMP) ## MNIST MLP, no norm vs BN vs LayerNorm (article §C.2.5) -> results/mnist_layernorm/
	$(SWEEP) experiment=mnist_layernorm hydra.sweep.dir=runs/make/mnist_layernorm-$(TAG) $(ARGS)
	$(COLLECT) runs/make/mnist_layernorm-$(TAG) --out results/mnist_layernorm$(SUFFIX)
	$(FIGURES) mnist_layernorm$(SUFFIX)

mnist-affine: $(STAMP) ## MNIST MLP, BN with vs without gamma/beta, and their values over training -> results/mnist_affine/
	$(SWEEP) experiment=mnist_affine hydra.sweep.dir=runs/make/mnist_affine-$(TAG) $(ARGS)
	$(COLLECT) runs/make/mnist_affine-$(TAG) --out results/mnist_affine$(SUFFIX)
	$(FIGURES) mnist_affine$(SUFFIX)

mnist-batch-size: $(STAMP) ## MNIST MLP, batch 8..1024 for 10k steps at one lr and at an lr scaled with the batch, with and without BN: the generalisation gap (article §C.2.2) -> results/mnist_batch_size/
	$(SWEEP) experiment=mnist_batch_size hydra.sweep.dir=runs/make/mnist_batch_size-$(TAG)/same_lr $(ARGS)
	$(SWEEP) experiment=mnist_batch_size_scaled_lr hydra.sweep.dir=runs/make/mnist_batch_size-$(TAG)/scaled_lr $(ARGS)
	$(COLLECT) runs/make/mnist_batch_size-$(TAG) --out results/mnist_batch_size$(SUFFIX)
	$(FIGURES) mnist_batch_size$(SUFFIX)

mnist-shift: $(STAMP) ## MNIST MLP under covariate shift: BN's population vs batch vs re-estimated statistics (article §C.2.3-4) -> results/mnist_shift/
	$(SWEEP) experiment=mnist_shift hydra.sweep.dir=runs/make/mnist_shift-$(TAG) $(ARGS)
	$(COLLECT) runs/make/mnist_shift-$(TAG) --out results/mnist_shift$(SUFFIX)
	$(FIGURES) mnist_shift$(SUFFIX)

cifar-bn: $(STAMP) ## CIFAR-10 VGG: standard, BN, noisy BN at lr 0.1 and 0.5 (Santurkar Figs 1, 2, 8) -> results/cifar_bn/
	$(SWEEP) experiment=$(if $(full),cifar_bn,cifar_bn_small) $(CIFAR_DATA) hydra.sweep.dir=runs/make/cifar_bn-$(TAG) $(ARGS)
	$(COLLECT) runs/make/cifar_bn-$(TAG) --out results/cifar_bn$(SUFFIX)
	$(FIGURES) cifar_bn$(SUFFIX)

cifar-probes-cpu: $(STAMP) ## ICS, the loss landscape and lp normalisation where both VGGs train: 1/8 width, full-size data, 4,000 steps, lr 0.1 and 0.01 (Santurkar Figs 3a, 4, 11, 12) -> results/cifar_probes_cpu/
	$(SWEEP) experiment=cifar_probes_cpu $(CIFAR_FULL_DATA) hydra.sweep.dir=runs/make/cifar_probes_cpu-$(TAG) $(ARGS)
	$(SWEEP) experiment=cifar_probes_cpu $(CIFAR_FULL_DATA) model.norm=l1,l2,linf optim.lr=0.1 trainer.ics_every=0 hydra.sweep.dir=runs/make/cifar_probes_cpu-$(TAG)/lp $(ARGS)
	$(COLLECT) runs/make/cifar_probes_cpu-$(TAG) --out results/cifar_probes_cpu$(SUFFIX)
	$(FIGURES) cifar_probes_cpu$(SUFFIX)

cifar-norm-variants: $(STAMP) ## small VGG: none, BN before and after the ReLU, LayerNorm (article §C.2.5-6 on a CNN) -> results/cifar_norm_variants/
	$(SWEEP) experiment=cifar_norm_variants $(CIFAR_SMALL_DATA) hydra.sweep.dir=runs/make/cifar_norm_variants-$(TAG)/pre $(ARGS)
	$(SWEEP) experiment=cifar_norm_variants $(CIFAR_SMALL_DATA) model.norm=batch model.norm_position=post hydra.sweep.dir=runs/make/cifar_norm_variants-$(TAG)/post $(ARGS)
	$(COLLECT) runs/make/cifar_norm_variants-$(TAG) --out results/cifar_norm_variants$(SUFFIX)
	$(FIGURES) cifar_norm_variants$(SUFFIX)

cifar-higher-lr: $(STAMP) ## small VGG: BN at x1/x5/x30 the lr, plain at x1/x5, sigmoid with/without BN (Ioffe §4.2) -> results/cifar_higher_lr/
	$(SWEEP) experiment=cifar_higher_lr $(CIFAR_SMALL_DATA) hydra.sweep.dir=runs/make/cifar_higher_lr-$(TAG)/relu $(ARGS)
	$(SWEEP) experiment=cifar_higher_lr $(CIFAR_SMALL_DATA) model.norm=batch optim.lr=3.0 hydra.sweep.dir=runs/make/cifar_higher_lr-$(TAG)/x30 $(ARGS)
	$(SWEEP) experiment=cifar_higher_lr $(CIFAR_SMALL_DATA) model.activation=sigmoid model.norm=batch optim.lr=0.5 hydra.sweep.dir=runs/make/cifar_higher_lr-$(TAG)/sigmoid_bn $(ARGS)
	$(SWEEP) experiment=cifar_higher_lr $(CIFAR_SMALL_DATA) model.activation=sigmoid model.norm=none optim.lr=0.1 hydra.sweep.dir=runs/make/cifar_higher_lr-$(TAG)/sigmoid_none $(ARGS)
	$(COLLECT) runs/make/cifar_higher_lr-$(TAG) --out results/cifar_higher_lr$(SUFFIX)
	$(FIGURES) cifar_higher_lr$(SUFFIX)

ics: $(STAMP) ## internal covariate shift, VGG standard vs BN, lr 0.1 and 0.01 (Santurkar Fig 3) -> results/ics/
	$(SWEEP) experiment=$(if $(full),ics_full,ics) $(CIFAR_DATA) hydra.sweep.dir=runs/make/ics-$(TAG) $(ARGS)
	$(COLLECT) runs/make/ics-$(TAG) --out results/ics$(SUFFIX)
	$(FIGURES) ics$(SUFFIX)

landscape: $(STAMP) ## loss landscape along the gradient, VGG standard vs BN (Santurkar Figs 4, 11) -> results/landscape/
	$(SWEEP) experiment=$(if $(full),landscape_full,landscape) $(CIFAR_DATA) hydra.sweep.dir=runs/make/landscape-$(TAG) $(ARGS)
	$(COLLECT) runs/make/landscape-$(TAG) --out results/landscape$(SUFFIX)
	$(FIGURES) landscape$(SUFFIX)

lp-norm: $(STAMP) ## VGG standard vs BN vs l1/l2/linf normalisation (Santurkar Figs 5, 6, 12) -> results/lp_norm/
	$(SWEEP) experiment=$(if $(full),lp_norm_full,lp_norm) $(CIFAR_DATA) hydra.sweep.dir=runs/make/lp_norm-$(TAG) $(ARGS)
	$(COLLECT) runs/make/lp_norm-$(TAG) --out results/lp_norm$(SUFFIX)
	$(FIGURES) lp_norm$(SUFFIX)

cifar-bn-cpu: $(STAMP) ## CIFAR-10 VGG at 1/8 width on the full-size training set, with noisy BN read both ways, LayerNorm and BN after the ReLU at lr 0.1; 3 h or more on 2 CPU cores -> results/cifar_bn_cpu/
	$(SWEEP) experiment=cifar_bn_cpu $(CIFAR_FULL_DATA) hydra.sweep.dir=runs/make/cifar_bn_cpu-$(TAG) $(ARGS)
	$(SWEEP) experiment=cifar_bn_cpu $(CIFAR_FULL_DATA) model.norm=noisy_batch model.noise.draw=channel optim.lr=0.1 hydra.sweep.dir=runs/make/cifar_bn_cpu-$(TAG)/noisy_channel $(ARGS)
	$(SWEEP) experiment=cifar_bn_cpu $(CIFAR_FULL_DATA) model.norm=layer optim.lr=0.1 hydra.sweep.dir=runs/make/cifar_bn_cpu-$(TAG)/layer $(ARGS)
	$(SWEEP) experiment=cifar_bn_cpu $(CIFAR_FULL_DATA) model.norm=batch model.norm_position=post optim.lr=0.1 hydra.sweep.dir=runs/make/cifar_bn_cpu-$(TAG)/post $(ARGS)
	$(COLLECT) runs/make/cifar_bn_cpu-$(TAG) --out results/cifar_bn_cpu$(SUFFIX)
	$(FIGURES) cifar_bn_cpu$(SUFFIX)

dln: $(STAMP) ## 25-layer deep linear network, every normalisation (Santurkar Figs 3b, 5, 10, 11, 13) -> results/dln/
	$(SWEEP) experiment=dln hydra.sweep.dir=runs/make/dln-$(TAG)/lr1e-6 $(ARGS)
	$(SWEEP) experiment=dln_lr1e-7 hydra.sweep.dir=runs/make/dln-$(TAG)/lr1e-7 $(ARGS)
	$(COLLECT) runs/make/dln-$(TAG) --out results/dln$(SUFFIX)
	$(FIGURES) dln$(SUFFIX)

figures: $(STAMP) ## redraw every figure from stored metrics in results/ (no training)
	$(RUN) experiments/figures.py

search-dln-scale: $(STAMP) ## the deep linear network's unstated data scales, ranked against the paper's losses -> results/search/dln_scale/
	$(RUN) experiments/search.py dln_scale

search-mnist-ioffe: $(STAMP) ## MNIST lr, momentum and init sigma, ranked against Ioffe & Szegedy Fig 1 -> results/search/mnist_ioffe/
	$(RUN) experiments/search.py mnist_ioffe

report: $(STAMP) ## results/REPORT.md: every claim of configs/claims.yaml judged from the stored metrics (no training)
	$(RUN) experiments/report.py

notebooks: $(STAMP) ## install Jupyter (the optional `notebooks` extra) when missing, and open notebooks/
	@$(RUN) -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP) ## speed figures (MNIST, CIFAR, landscape probe, a 30-run sweep) -> results/bench/*.json (~30 minutes)
	$(RUN) benchmarks/bench.py

test: $(STAMP) ## the unit and integration tests (about a minute or two on 2 cores)
	$(BIN)/pytest -m "unit or integration" -q

lint: $(STAMP) ## ruff, configured in pyproject.toml (CI runs it; .pre-commit-config.yaml runs it on each commit)
	$(BIN)/ruff check .

test-all: $(STAMP) ## every test, the command-line (e2e) ones too: what CI runs
	$(BIN)/pytest -q

clean: ## remove run folders (runs/) and caches; keeps results/ and .venv
	rm -rf runs .pytest_cache
