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
	mnist-batch-size mnist-shift mnist-eos mnist-init mnist-population mnist-eff-lr mnist-warmup
$(MINUTE_TARGETS): REF_SEEDS := 5
dln: REF_SEEDS := 10
SUFFIX = $(if $(or $(replace),$(and $(filter $(REF_SEEDS),$(seeds)),$(if $(ARGS)$(full),,yes))),,-$(TAG))
SWEEP = $(RUN) experiments/train.py -m hydra/launcher=parallel seed=$(SEED_LIST)
COLLECT = $(RUN) experiments/collect.py
FIGURES = $(RUN) experiments/figures.py
# Every experiment target is these two: `$(call sweep,NAME,CONFIG,OVERRIDES,PART)` runs configs/experiment/CONFIG.yaml
# into runs/make/NAME-<settings>/ (PART: a sub-folder, for a target of several sweeps), then `$(call collect,NAME)`
# gathers them into results/NAME/ and draws its figures. A comma inside OVERRIDES is written $(comma).
comma := ,
sweep = $(SWEEP) experiment=$(2) $(3) hydra.sweep.dir=runs/make/$(1)-$(TAG)$(if $(4),/$(4)) $(ARGS)
define collect
$(COLLECT) runs/make/$(1)-$(TAG) --out results/$(1)$(SUFFIX)
$(FIGURES) $(1)$(SUFFIX)
endef

# CIFAR-10: in this workplace only unofficial copies exist (README, CIFAR-10), used knowingly: the small CPU
# configuration on the pixel-exact subset, the full protocol on the full-size lossy copy. Elsewhere: the official data.
CIFAR_SMALL_DATA ?= $(if $(wildcard ../shared/datasets/cifar-10-batches-py),data.allow_unofficial=true,)
CIFAR_FULL_DATA ?= $(if $(wildcard ../shared/datasets/cifar10-LOSSY-approx),data.archive=cifar10-LOSSY-approx/cifar-10-python-LOSSY-jpeg75-approx.tar.xz data.allow_unofficial=true,)
CIFAR_DATA = $(if $(full),$(CIFAR_FULL_DATA),$(CIFAR_SMALL_DATA))

.PHONY: help install mnist-bn mnist-ioffe mnist-lr-sweep mnist-norm-position mnist-layernorm mnist-affine mnist-batch-size mnist-shift mnist-eos mnist-init mnist-population mnist-eff-lr mnist-warmup cifar-bn cifar-bn-cpu cifar-probes-cpu cifar-norm-variants cifar-higher-lr cifar-warmup cifar-population ics landscape dln lp-norm figures report wandb-workspace search-dln-scale search-mnist-ioffe notebooks bench test \
	test-all test-paths lint clean

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
	$(call sweep,mnist_bn,mnist_bn)
	$(call collect,mnist_bn)

mnist-ioffe: $(STAMP) ## MNIST MLP at the settings Ioffe & Szegedy's curves imply (make search-mnist-ioffe) -> results/mnist_ioffe/
	$(call sweep,mnist_ioffe,mnist_ioffe)
	$(call collect,mnist_ioffe)

mnist-lr-sweep: $(STAMP) ## final test accuracy vs learning rate, with and without BN -> results/mnist_lr_sweep/
	$(call sweep,mnist_lr_sweep,mnist_lr_sweep)
	$(call collect,mnist_lr_sweep)

mnist-norm-position: $(STAMP) ## MNIST MLP, BN before vs after each sigmoid (article §C.2.6) -> results/mnist_norm_position/
	$(call sweep,mnist_norm_position,mnist_norm_position)
	$(call collect,mnist_norm_position)

mnist-layernorm: $(STAMP) ## MNIST MLP, no norm vs BN vs LayerNorm (article §C.2.5) -> results/mnist_layernorm/
	$(call sweep,mnist_layernorm,mnist_layernorm)
	$(call collect,mnist_layernorm)

mnist-affine: $(STAMP) ## MNIST MLP, BN with vs without gamma/beta, and their values over training -> results/mnist_affine/
	$(call sweep,mnist_affine,mnist_affine)
	$(call collect,mnist_affine)

mnist-batch-size: $(STAMP) ## MNIST MLP, batch 8..1024 for 10k steps at one lr and at an lr scaled with the batch, with and without BN: the generalisation gap (article §C.2.2) -> results/mnist_batch_size/
	$(call sweep,mnist_batch_size,mnist_batch_size,,same_lr)
	$(call sweep,mnist_batch_size,mnist_batch_size_scaled_lr,,scaled_lr)
	$(call collect,mnist_batch_size)

mnist-shift: $(STAMP) ## MNIST MLP under covariate shift: BN's population vs batch vs re-estimated statistics (article §C.2.3-4) -> results/mnist_shift/
	$(call sweep,mnist_shift,mnist_shift)
	$(call collect,mnist_shift)

mnist-eos: $(STAMP) ## the edge of stability: the MNIST MLP's β against 2/lr, with and without BN, at 5 learning rates (Cohen et al. 2021) -> results/mnist_eos/
	$(call sweep,mnist_eos,mnist_eos)
	$(call collect,mnist_eos)

mnist-init: $(STAMP) ## BN at initialisation: a 50-layer ReLU MLP's gradient and representation rank by depth, with and without BN (Yang et al. 2019; Daneshmand et al. 2020) -> results/mnist_init/
	$(call sweep,mnist_init,mnist_init)
	$(call collect,mnist_init)

mnist-population: $(STAMP) ## batch vs population statistics in training: the MNIST MLP without normalisation, with BN, and with BN normalising by its running statistics (Ghorbani et al. 2019) -> results/mnist_population/
	$(call sweep,mnist_population,mnist_population)
	$(call collect,mnist_population)

mnist-eff-lr: $(STAMP) ## scale invariance: the MNIST MLP's weight norms and effective learning rates η/‖w‖² at 5 learning rates, with and without BN (Arora et al. 2019) -> results/mnist_eff_lr/
	$(call sweep,mnist_eff_lr,mnist_eff_lr)
	$(call collect,mnist_eff_lr)

mnist-warmup: $(STAMP) ## learning-rate warm-up instead of BN: the MNIST MLP at lr 10 and 30 without BN, with a warm-up, and with BN (Gilmer et al. 2022) -> results/mnist_warmup/
	$(call sweep,mnist_warmup,mnist_warmup,,plain)
	$(call sweep,mnist_warmup,mnist_warmup,model.norm=none optim.warmup_steps=1000,warmup)
	$(call collect,mnist_warmup)

cifar-bn: $(STAMP) ## CIFAR-10 VGG: standard, BN, noisy BN at lr 0.1 and 0.5 (Santurkar Figs 1, 2, 8) -> results/cifar_bn/
	$(call sweep,cifar_bn,$(if $(full),cifar_bn,cifar_bn_small),$(CIFAR_DATA))
	$(call collect,cifar_bn)

cifar-probes-cpu: $(STAMP) ## ICS, the loss landscape and lp normalisation where both VGGs train: 1/8 width, full-size data, 4,000 steps, lr 0.1 and 0.01 (Santurkar Figs 3a, 4, 11, 12) -> results/cifar_probes_cpu/
	$(call sweep,cifar_probes_cpu,cifar_probes_cpu,$(CIFAR_FULL_DATA))
	$(call sweep,cifar_probes_cpu,cifar_probes_cpu,$(CIFAR_FULL_DATA) model.norm=l1$(comma)l2$(comma)linf optim.lr=0.1 trainer.ics_every=0,lp)
	$(call collect,cifar_probes_cpu)

cifar-norm-variants: $(STAMP) ## small VGG: none, BN before and after the ReLU, LayerNorm (article §C.2.5-6 on a CNN) -> results/cifar_norm_variants/
	$(call sweep,cifar_norm_variants,cifar_norm_variants,$(CIFAR_SMALL_DATA),pre)
	$(call sweep,cifar_norm_variants,cifar_norm_variants,$(CIFAR_SMALL_DATA) model.norm=batch model.norm_position=post,post)
	$(call collect,cifar_norm_variants)

cifar-higher-lr: $(STAMP) ## small VGG: BN at x1/x5/x30 the lr, plain at x1/x5, sigmoid with/without BN (Ioffe §4.2) -> results/cifar_higher_lr/
	$(call sweep,cifar_higher_lr,cifar_higher_lr,$(CIFAR_SMALL_DATA),relu)
	$(call sweep,cifar_higher_lr,cifar_higher_lr,$(CIFAR_SMALL_DATA) model.norm=batch optim.lr=3.0,x30)
	$(call sweep,cifar_higher_lr,cifar_higher_lr,$(CIFAR_SMALL_DATA) model.activation=sigmoid model.norm=batch optim.lr=0.5,sigmoid_bn)
	$(call sweep,cifar_higher_lr,cifar_higher_lr,$(CIFAR_SMALL_DATA) model.activation=sigmoid model.norm=none optim.lr=0.1,sigmoid_none)
	$(call collect,cifar_higher_lr)

cifar-warmup: $(STAMP) ## small VGG at lr 0.5: without BN, with a learning-rate warm-up, with BN (Gilmer et al. 2022) -> results/cifar_warmup/
	$(call sweep,cifar_warmup,cifar_warmup,$(CIFAR_SMALL_DATA),plain)
	$(call sweep,cifar_warmup,cifar_warmup,$(CIFAR_SMALL_DATA) model.norm=none optim.warmup_steps=200,warmup)
	$(call collect,cifar_warmup)

cifar-population: $(STAMP) ## small VGG at lr 0.1: without normalisation, BN, and BN normalising by its running statistics in training (Ghorbani et al. 2019) -> results/cifar_population/
	$(call sweep,cifar_population,cifar_population,$(CIFAR_SMALL_DATA))
	$(call collect,cifar_population)

ics: $(STAMP) ## internal covariate shift, VGG standard vs BN, lr 0.1 and 0.01 (Santurkar Fig 3) -> results/ics/
	$(call sweep,ics,$(if $(full),ics_full,ics),$(CIFAR_DATA))
	$(call collect,ics)

landscape: $(STAMP) ## loss landscape along the gradient, VGG standard vs BN (Santurkar Figs 4, 11) -> results/landscape/
	$(call sweep,landscape,$(if $(full),landscape_full,landscape),$(CIFAR_DATA))
	$(call collect,landscape)

lp-norm: $(STAMP) ## VGG standard vs BN vs l1/l2/linf normalisation (Santurkar Figs 5, 6, 12) -> results/lp_norm/
	$(call sweep,lp_norm,$(if $(full),lp_norm_full,lp_norm),$(CIFAR_DATA))
	$(call collect,lp_norm)

cifar-bn-cpu: $(STAMP) ## CIFAR-10 VGG at 1/8 width on the full-size training set, with noisy BN read both ways, LayerNorm and BN after the ReLU at lr 0.1; 3 h or more on 2 CPU cores -> results/cifar_bn_cpu/
	$(call sweep,cifar_bn_cpu,cifar_bn_cpu,$(CIFAR_FULL_DATA))
	$(call sweep,cifar_bn_cpu,cifar_bn_cpu,$(CIFAR_FULL_DATA) model.norm=noisy_batch model.noise.draw=channel optim.lr=0.1,noisy_channel)
	$(call sweep,cifar_bn_cpu,cifar_bn_cpu,$(CIFAR_FULL_DATA) model.norm=layer optim.lr=0.1,layer)
	$(call sweep,cifar_bn_cpu,cifar_bn_cpu,$(CIFAR_FULL_DATA) model.norm=batch model.norm_position=post optim.lr=0.1,post)
	$(call collect,cifar_bn_cpu)

dln: $(STAMP) ## 25-layer deep linear network, every normalisation (Santurkar Figs 3b, 5, 10, 11, 13) -> results/dln/
	$(call sweep,dln,dln,,lr1e-6)
	$(call sweep,dln,dln_lr1e-7,,lr1e-7)
	$(call collect,dln)

figures: $(STAMP) ## redraw every figure from stored metrics in results/ (no training)
	$(RUN) experiments/figures.py

search-dln-scale: $(STAMP) ## the deep linear network's unstated data scales, ranked against the paper's losses -> results/search/dln_scale/
	$(RUN) experiments/search.py dln_scale

search-mnist-ioffe: $(STAMP) ## MNIST lr, momentum and init sigma, ranked against Ioffe & Szegedy Fig 1 -> results/search/mnist_ioffe/
	$(RUN) experiments/search.py mnist_ioffe

report: $(STAMP) ## results/REPORT.md: every claim of configs/claims.yaml judged from the stored metrics (no training)
	$(RUN) experiments/report.py

wandb-workspace: $(STAMP) ## a W&B workspace for experiment=NAME (lr=X: one learning rate): its figures as sections; saved when online, else its definition in runs/wandb_workspaces/
	@test -n "$(experiment)" || { echo "make wandb-workspace experiment=NAME [lr=X]" >&2; exit 2; }
	$(RUN) experiments/wandb_workspace.py $(experiment) $(if $(lr),--lr $(lr))

notebooks: $(STAMP) ## install Jupyter (the optional `notebooks` extra) when missing, and open notebooks/
	@$(RUN) -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)  # root: how containers and CI run

bench: $(STAMP) ## speed figures (MNIST, CIFAR, landscape probe, a 30-run sweep) -> results/bench/*.json (~30 minutes)
	$(RUN) benchmarks/bench.py

# Two worker processes (pytest-xdist): about a minute on 2 cores, against about two in one process.
test: $(STAMP) ## the unit and integration tests (about a minute on 2 cores)
	$(BIN)/pytest -m "unit or integration" -q -n 2

lint: $(STAMP) ## ruff, configured in pyproject.toml (CI runs it; .pre-commit-config.yaml runs it on each commit)
	$(BIN)/ruff check .

test-all: $(STAMP) ## every test, the command-line (e2e) ones too: what CI runs
	$(BIN)/pytest -q

# Another processor's float arithmetic, on this one: MKL's SSE4.2 kernels and ATen's without AVX give results that
# differ in the last bits, so a tolerance tighter than the arithmetic it checks fails here (docs/usage.md, Tests).
test-paths: $(STAMP) ## the unit and integration tests again on other CPU code paths (MKL SSE4.2, ATen without AVX)
	MKL_ENABLE_INSTRUCTIONS=SSE4_2 ATEN_CPU_CAPABILITY=default $(BIN)/pytest -m "unit or integration" -q -n 2

clean: ## remove run folders (runs/) and caches; keeps results/ and .venv
	rm -rf runs .pytest_cache
