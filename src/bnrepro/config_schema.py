"""The keys, types and defaults of every config group, written once: one dataclass per group option, registered
with Hydra's ConfigStore under the option's name (`model=vgg` is VGG below, `trainer=default` Trainer). configs/
holds what differs from them: the datasets (configs/data/mnist.yaml builds on `Idx`), model variants
(configs/model/mlp_relu.yaml) and the experiments.

The options go to Hydra as plain nodes, so that a value of the wrong type reaches config.validate, which checks
every key against these annotations (config.check_types) and reports it in one line with exit code 2, as it does every
other bad value; Hydra's struct mode refuses unknown keys on the command line. Ranges and rules between keys are
config.validate's. A stored run's config that predates a key is migrated (bnrepro.computed.MIGRATIONS).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING, SI, DictConfig


def _list(*values):
    return field(default_factory=lambda: list(values))


CACHE_DIR = SI("${oc.env:BNREPRO_CACHE,${oc.env:HOME,.}/.cache/bnrepro}")


# ---- the run ----------------------------------------------------------------------------------------------------
@dataclass
class Figures:
    """What experiments/figures.py draws from an experiment's results: functions "module.name" in
    src/bnrepro/figures/, and the options of its summary table (bnrepro.collect.summarize). Set in experiment/*.yaml."""

    draw: list[str] = _list()
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Train:
    """The top level of configs/train.yaml."""

    experiment_name: str = "default"
    force: bool = False  # true: train again a run whose folder holds a finished run (or a checkpoint), from step 0
    fresh: bool = False  # true: a new folder (hydra.run.dir / hydra.sweep.dir), whatever ran before
    figures: Figures = field(default_factory=Figures)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available, for the VGG (plan.resolve_device)


# ---- data -------------------------------------------------------------------------------------------------------
@dataclass
class Idx:
    """A dataset of four IDX files (src/bnrepro/data/idx.py): MNIST and its kin. A dataset in this format is one
    yaml file in configs/data/ that builds on this one (configs/data/fashion_mnist.yaml), and no code."""

    name: str = MISSING  # names the data in every record, and its cache folder
    format: str = "idx"
    # Folder that holds `folder` below (torchvision's layout). BNREPRO_DATA overrides the default, which is
    # ../shared/datasets beside this checkout when it holds data, else ./data (src/bnrepro/paths.py).
    root: str = SI("${data_root:}")
    folder: str = MISSING
    files: dict[str, str] = MISSING  # train_images, train_labels, test_images, test_labels: uncompressed names
    # The official files' checksums: SHA-256 of the uncompressed files, md5 of the .gz files. Files that fail them
    # are refused unless allow_unofficial=true. Empty: no official reference, and every run records
    # data_official=false.
    sha256: dict[str, str] | None = None
    gz_md5: dict[str, str] | None = None
    cache_dir: str = CACHE_DIR  # where .gz files are unpacked, and decoded tensors kept, when `root` is read-only
    # Fetch with this torchvision dataset class (into <root>/<class>/raw), only when the files are absent and a
    # network answers. null: no download.
    download: bool = True
    torchvision: str | None = None
    normalize: bool = False  # inputs scaled to [0, 1]; true also standardises them with the training split's
    # auto: on the CPU, feed evaluation batches to the first layer as a sparse CSR matrix (MNIST is ~80% zeros; the
    # same result up to float summation order, ~1.5x faster).
    sparse_eval: Literal["auto", True, False] = "auto"
    allow_unofficial: bool = False


@dataclass
class Cifar10:
    """CIFAR-10 in torchvision's layout (src/bnrepro/data/cifar10.py)."""

    name: str = "cifar10"
    format: str = "cifar10"
    root: str = SI("${data_root:}")  # the folder that holds cifar-10-batches-py/; BNREPRO_DATA overrides it
    cache_dir: str = CACHE_DIR
    download: bool = True
    # A tarball holding cifar-10-batches-py/ (absolute, or relative to root), extracted once into cache_dir. For
    # the full-size offline copy: data.archive=cifar10-LOSSY-approx/cifar-10-python-LOSSY-jpeg75-approx.tar.xz
    archive: str | None = None
    # The offline copies are not the official files (a pixel-exact subset; a full-size copy decoded from JPEG):
    # they load only with allow_unofficial=true, loudly, and everything they feed records data_official=false.
    allow_unofficial: bool = False
    normalize: bool = True  # per-channel mean/std of the training split, on the device (false: scale to [0, 1])
    sparse_eval: Literal["auto", True, False] = False
    # Random crops (4-pixel zero padding) and horizontal flips of whole training batches, on the device. Off, as in
    # the paper's runs ("no data augmentation").
    augment: bool = False


@dataclass
class Linear:
    """The deep linear network's task (Santurkar et al. 2018, App. A): y = A x with x ~ N(0, I) and a Gaussian
    features x features matrix A, both drawn from `seed`. Training is full-batch on n_train samples."""

    name: str = "linear"
    format: str = "linear"
    features: int = 10
    n_train: int = 1000
    n_test: int = 1000
    # The run's seed: each seed draws its own A and x, so seeds vary the problem as well as the initial weights,
    # and every variant at one seed meets the same problem (the report compares them seed by seed).
    seed: int = II("seed")
    # The scales the paper leaves unstated: x ~ N(0, x_std^2 I), A's entries ~ N(0, a_std^2). target_loss (a
    # number) sets a_std instead, so that the targets' expected summed squared norm over the training set (about
    # the initial loss) is target_loss. experiment=dln chooses them (docs/protocols.md).
    x_std: float = 1.0
    a_std: float = 1.0
    target_loss: float | None = None


# ---- models -----------------------------------------------------------------------------------------------------
@dataclass
class Noise:
    """noisy_batch: Santurkar et al. 2018, Algorithm 1 (src/bnrepro/models/noisy_bn.py)."""

    n_mu: float = 0.5
    n_sigma: float = 1.25
    r_mu: float = 0.1
    r_sigma: float = 0.1
    position: str = "pre_affine"  # pre_affine | post_affine: the paper leaves open where the noise goes
    # position | channel: one noise draw per sample, channel and position (H, W as batch), or per sample and
    # channel; the paper's text allows both.
    draw: str = "position"
    seed: int = II("seed")  # the noise's own stream (each layer offsets it): never shifts the data order


# Each model's keys are exactly its constructor's keyword arguments, plus `name` (models.build_model).
@dataclass
class MLP:
    name: str = "mlp"
    in_features: int = 784
    hidden: list[int] = _list(100, 100, 100)
    num_classes: int = 10
    activation: str = "sigmoid"  # sigmoid | tanh | relu
    # Between each hidden Linear and its activation: none | batch (BatchNorm1d) | noisy_batch | l1 | l2 | linf
    # (lp-normalisation) | layer (LayerNorm).
    norm: str = "none"
    norm_position: str = "pre"  # pre: before the activation (the papers'); post: after it (the article's §C.2.6)
    affine: bool = True  # false: batch or layer norm without their learned scale and shift (gamma, beta)
    bn_eps: float = 1.0e-5
    bn_momentum: float = 0.1
    init: str = "gaussian"  # gaussian (N(0, init_std^2), the paper's "small random Gaussian values") | glorot
    init_std: float = 0.1
    noise: Noise = field(default_factory=Noise)


@dataclass
class VGG:
    name: str = "vgg"
    # Conv widths and max-pools ("M"); the default is VGG-16's layout (13 conv layers, numbered from 1 as in the
    # paper).
    layers: list[Any] = _list(64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
    in_channels: int = 3
    num_classes: int = 10
    image_size: int = 32
    width: float = 1.0  # multiplies every conv width: small values run the same network on a CPU
    norm: str = "none"  # none | batch | noisy_batch | l1 | l2 | linf | layer (after each conv, before its ReLU)
    activation: str = "relu"  # relu (the paper's) | sigmoid | tanh
    norm_position: str = "pre"
    affine: bool = True
    bn_eps: float = 1.0e-5
    bn_momentum: float = 0.1
    noise: Noise = field(default_factory=Noise)


@dataclass
class DLN:
    """Santurkar et al. 2018's deep linear network: `depth` linear layers of width x width, Glorot init, no bias
    (the network computes W_depth...W_1 x). The normalisation follows every layer but the last."""

    name: str = "dln"
    depth: int = 25
    width: int = 10
    in_features: int = 10
    out_features: int = 10
    bias: bool = False
    norm: str = "none"  # none | batch | noisy_batch | l1 | l2 | linf
    bn_eps: float = 1.0e-5
    bn_momentum: float = 0.1
    noise: Noise = field(default_factory=Noise)


# ---- training ---------------------------------------------------------------------------------------------------
@dataclass
class SGD:
    """Its keys, but `name`, are FlatSGD's keyword arguments (optim.build_optimizer)."""

    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclass
class Trainer:
    max_steps: int = 50000
    batch_size: int = 60
    eval_every: int = 250  # full test-set evaluation; 0 switches it off (the article's notebook used 50)
    # With each evaluation, also this many training samples (a fixed random subset) in evaluation mode: rows
    # train/eval_acc and train/eval_loss, the training side of a generalisation gap. 0: none.
    eval_train: int = 0
    probe_every: int = 50  # activation percentiles on the fixed probe batch; 0 switches them off
    log_every: int = 10  # training loss/accuracy are kept per step and stored as means over this window
    progress_every: int = 0  # progress line cadence in steps; 0: about 20 lines per run
    # checkpoint.pt (weights, optimiser, every RNG stream, the metrics so far) and metrics.parquet, every N steps
    # and when a signal stops the run; running the same command again resumes from it. 0: only on a signal.
    checkpoint_every: int = 5000
    # A run is 'diverged' when its loss stops being finite (it then stops), or when its training loss (the mean
    # over a log window) exceeds divergence_threshold times the first step's loss (null: never). 100 marks an MLP
    # at lr 10000 (1.3e5 against 2.7) and none of the committed reference runs (their highest 10-step mean is 23x
    # ln 10, the untrained loss: the MLP at lr 30 without BN).
    divergence_threshold: float | None = 100
    stop_on_divergence: bool = True  # false: a diverged run trains on to max_steps (the whole curve)
    # torch intra-op threads. null: 1 for the MLP on a CPU (its small products are faster on one thread, and its
    # numbers are then those of make's one-thread jobs); torch's choice otherwise (1 per job under the parallel
    # launcher).
    threads: int | None = None
    eval_batch_size: int = 1000  # evaluation chunk for splits stored as uint8 images (CIFAR); MNIST goes in one pass
    # The MLP's hand-written backward (src/bnrepro/models/mlp_fused.py): bitwise the same as autograd, ~15% faster
    # steps on a CPU. auto: where it applies (model=mlp, norm none|batch, no amp); false: always autograd.
    fused_step: Literal["auto", True, False] = "auto"
    # Mixed precision and memory layout, for GPUs. Off by default: turn them on only where they change results by
    # no more than seed-to-seed noise (docs/gpu.md).
    amp: Literal[None, "bf16"] = None  # null (float32) | bf16 (torch.autocast, bfloat16)
    channels_last: bool = False  # conv models: NHWC memory layout
    # CUDA only: TF32 matrix products and convolutions (faster, ~1e-3 relative error). false keeps float32 float32;
    # run.json records it.
    tf32: bool = False
    # The training step's forward and backward through torch.compile, in this mode (null: eager). Evaluation and the
    # probes run the same weights eagerly. The numbers agree with eager ones to float rounding, not bitwise
    # (tests/test_compile.py); the first steps wait for the compilation (~1 min on a CPU, for the MLP).
    compile: Literal[None, "default", "reduce-overhead", "max-autotune"] = None
    # Probes inside a training step (the ics and landscape groups): every N steps; 0 switches them off.
    ics_every: int = 0  # internal covariate shift: gradient of a layer before/after the earlier layers' update
    landscape_every: int = 0  # loss and gradient along the gradient direction (Santurkar's loss landscape)


@dataclass
class Probe:
    """Percentiles of each hidden layer's activation input (the sigmoid's input, after BN when BN is on)."""

    batch_size: int = 256  # a fixed probe batch drawn once from the test set
    unit: int = 0  # the "typical unit" (paper Fig 1b,c) whose distribution over the batch is tracked
    percentiles: list[float] = _list(15, 50, 85)
    # batch: BN normalises the probe batch with its own statistics, as in training (running stats untouched);
    # running: BN uses its running statistics, as at inference.
    bn_stats: Literal["batch", "running"] = "batch"
    layers: list[str] | None = None  # names from the model's taps (layer1, layer2, ...); null probes every one
    moments: bool = False  # also record each probed layer's pooled mean and std
    affine: bool = False  # also record the normalisation layers' scale and shift (gamma, beta)
    # After training: evaluation under covariate shift, with BN's three ways to normalise
    # (src/bnrepro/probes/shift.py). null: none. Otherwise {contrast: [factors], brightness: [offsets], classes:
    # [numbers of classes kept], reestimate_samples: N, single_images: N, batches_per_image: N}
    # (configs/experiment/mnist_shift.yaml); config._validate_shift checks it.
    shift: dict[str, Any] | None = None


@dataclass
class ICS:
    """Internal covariate shift, optimisation view (Santurkar et al. 2018, Def 2.1), every trainer.ics_every steps.
    Layer numbers from 1 (conv layers and the classifier for VGG, linear layers for the DLN); null: the model's
    defaults, VGG #5 and #10, deep linear network #9 and #17, MLP #2 and #3."""

    layers: list[int] | None = None


@dataclass
class Landscape:
    """The loss landscape along the gradient (Santurkar et al. 2018, App. A.2.2), every trainer.landscape_every
    steps: the loss and gradient at w - eta*g for `points` step sizes eta from eta_min*lr to eta_max*lr."""

    eta_min: float = 0.5
    eta_max: float = 4.0
    points: int = 8
    spacing: Literal["linear", "log"] = "linear"
    batched: bool = True  # every eta in one vmap call (false: a loop; the same numbers, for comparison)


@dataclass
class Wandb:
    name: str = "wandb"
    project: str = "bnrepro"
    entity: str | None = None
    mode: Literal["offline", "online", "disabled"] = SI("${oc.env:WANDB_MODE,offline}")  # WANDB_MODE overrides
    group: str = II("experiment_name")
    tags: list[str] = _list()
    # One W&B call per this many steps (a call costs ~0.3 ms), carrying the evaluation and probes due then;
    # metrics.parquet keeps the full record (probes every trainer.probe_every steps).
    log_every: int = 250


@dataclass
class NoLogger:
    name: str = "none"


# ---- registration -----------------------------------------------------------------------------------------------
# (group, option) -> its schema.
OPTIONS: dict[tuple[str, str], type] = {
    ("data", "cifar10"): Cifar10, ("data", "linear"): Linear,
    ("model", "mlp"): MLP, ("model", "vgg"): VGG, ("model", "dln"): DLN,
    ("optim", "sgd"): SGD, ("trainer", "default"): Trainer, ("probe", "activations"): Probe,
    ("ics", "default"): ICS, ("landscape", "default"): Landscape,
    ("logger", "wandb"): Wandb, ("logger", "none"): NoLogger,
}
BASES: dict[tuple[str, str], type] = {("base/data", "idx"): Idx}  # what yaml options build on (defaults lists)
TOP = "base_train"  # configs/train.yaml's own keys (Train), first in its defaults list
GROUPS = list(dict.fromkeys(group for group, _ in OPTIONS))
# The key a composed group's schema is told by, in groups of several: data by its format, the others by their name.
DISCRIMINATORS = {"data": "format", "model": "name", "optim": "name", "logger": "name"}


def schemas(group: str) -> dict[str, type]:
    """The group's schemas (its options' and the bases its files build on) by their default of the group's
    discriminator; a group of one schema has it under ""."""
    key = DISCRIMINATORS.get(group)
    found = [schema for (g, _), schema in {**OPTIONS, **BASES}.items() if g in (group, f"base/{group}")]
    return {(schema.__dataclass_fields__[key].default if key else ""): schema for schema in found}


def register() -> None:
    store = ConfigStore.instance()
    for (group, name), schema in {**OPTIONS, **BASES}.items():
        store.store(group=group, name=name, node=dataclasses.asdict(schema()))
    store.store(name=TOP, node=dataclasses.asdict(Train()))


register()


def compose(*overrides: str, return_hydra_config: bool = False) -> DictConfig:
    """configs/train.yaml with these overrides, composed as experiments/train.py composes it (for the figures'
    specs and the tests)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from bnrepro.paths import PROJECT_ROOT

    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "configs"), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides), return_hydra_config=return_hydra_config)
