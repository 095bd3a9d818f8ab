"""Every config key, its type, its range and its default, written once: one dataclass per group option, which
Hydra composes from (config.hydra.register stores them: `model=vgg` is VGG below, `trainer=default` Trainer) and
which config.check turns the composed config into. configs/ holds what differs from them: the datasets
(configs/data/mnist.yaml builds on `Idx`), model variants (configs/model/mlp_relu.yaml) and the experiments.

Types and ranges are checked here, by pydantic; a key's registry names (model.norm is one of models.NORMS) and the
rules between keys are config.check's. A stored run's config that predates a key is migrated (config.stored).
"""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from omegaconf import II, MISSING, SI
from pydantic import BeforeValidator, ConfigDict, SkipValidation, StringConstraints
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from bnrepro.models.vgg import VGG16

# Strict: 1 is not true and 1.5 not an integer; a key no schema has is refused; inf and NaN mean no setting here.
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
schema = dataclass(config=STRICT)


def one_of(*choices):
    """Literal[choices] that tells True from 1 (pydantic's Literal, like ==, takes 1 for True)."""
    def exact(value):
        if not any(value == c and type(value) is type(c) for c in choices):
            raise PydanticCustomError("literal_error", "", {"expected": ", ".join(map(repr, choices))})
        return value
    return Annotated[Literal[choices], BeforeValidator(exact)]


Positive = Annotated[float, Gt(0)]
NonNegative = Annotated[float, Ge(0)]
Fraction = Annotated[float, Ge(0), Le(1)]
INT64 = 2**63 - 1  # torch's sizes and counts are 64-bit
Size = Annotated[int, Ge(1), Le(INT64)]
Every = Annotated[int, Ge(0), Le(INT64)]  # a cadence in steps; 0 switches it off
Seed = Annotated[int, Ge(0), Le(INT64)]  # torch's generators take 64 bits; noisy BN adds each layer's number
Name = Annotated[str, StringConstraints(pattern=r"\S")]
AutoOrBool = one_of("auto", True, False)


def _list(*values):
    return field(default_factory=lambda: list(values))


CACHE_DIR = SI("${oc.env:BNREPRO_CACHE,${oc.env:HOME,.}/.cache/bnrepro}")


# ---- data -------------------------------------------------------------------------------------------------------
@schema
class Idx:
    """A dataset of four IDX files (src/bnrepro/data/idx.py): MNIST and its kin. A dataset in this format is one
    yaml file in configs/data/ that builds on this one (configs/data/fashion_mnist.yaml), and no code."""

    name: Name = MISSING  # names the data in every record, and its cache folder
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
    sparse_eval: AutoOrBool = "auto"
    allow_unofficial: bool = False


@schema
class Cifar10:
    """CIFAR-10 in torchvision's layout (src/bnrepro/data/cifar10.py)."""

    name: Name = "cifar10"
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
    sparse_eval: AutoOrBool = False
    # Random crops (4-pixel zero padding) and horizontal flips of whole training batches, on the device. Off, as in
    # the paper's runs ("no data augmentation").
    augment: bool = False


@schema
class Linear:
    """The deep linear network's task (Santurkar et al. 2018, App. A): y = A x with x ~ N(0, I) and a Gaussian
    features x features matrix A, both drawn from `seed`. Training is full-batch on n_train samples."""

    name: Name = "linear"
    format: str = "linear"
    features: Size = 10
    n_train: Size = 1000
    n_test: Size = 1000
    # The run's seed: each seed draws its own A and x, so seeds vary the problem as well as the initial weights,
    # and every variant at one seed meets the same problem (the report compares them seed by seed).
    seed: Seed = II("seed")
    # The scales the paper leaves unstated: x ~ N(0, x_std^2 I), A's entries ~ N(0, a_std^2). target_loss (a
    # number) sets a_std instead, so that the targets' expected summed squared norm over the training set (about
    # the initial loss) is target_loss. experiment=dln chooses them (docs/protocols.md).
    x_std: Positive = 1.0
    a_std: Positive = 1.0
    target_loss: Positive | None = None


# ---- models -----------------------------------------------------------------------------------------------------
@schema
class Noise:
    """noisy_batch: Santurkar et al. 2018, Algorithm 1 (src/bnrepro/models/noisy_bn.py)."""

    n_mu: NonNegative = 0.5
    n_sigma: Annotated[float, Ge(1)] = 1.25
    r_mu: NonNegative = 0.1
    r_sigma: NonNegative = 0.1
    position: str = "pre_affine"  # pre_affine | post_affine: the paper leaves open where the noise goes
    # position | channel: one noise draw per sample, channel and position (H, W as batch), or per sample and
    # channel; the paper's text allows both.
    draw: str = "position"
    seed: Seed = II("seed")  # the noise's own stream (each layer offsets it): never shifts the data order


# Each model's keys are exactly its constructor's keyword arguments, plus `name` (models.build_model), and its
# defaults are the constructor's (tests/test_config.py checks both).
@schema
class MLP:
    name: str = "mlp"
    in_features: Size = 784
    hidden: Annotated[list[Size], MinLen(1)] = _list(100, 100, 100)
    num_classes: Size = 10
    activation: str = "sigmoid"  # sigmoid | tanh | relu
    # Between each hidden Linear and its activation: none | batch (BatchNorm1d) | noisy_batch | l1 | l2 | linf
    # (lp-normalisation) | layer (LayerNorm).
    norm: str = "none"
    norm_position: str = "pre"  # pre: before the activation (the papers'); post: after it (the article's §C.2.6)
    affine: bool = True  # false: batch or layer norm without their learned scale and shift (gamma, beta)
    bn_eps: Positive = 1.0e-5
    bn_momentum: Fraction = 0.1
    init: str = "gaussian"  # gaussian (N(0, init_std^2), the paper's "small random Gaussian values") | glorot
    init_std: Positive = 0.1
    noise: Noise = field(default_factory=Noise)


@schema
class VGG:
    name: str = "vgg"
    # Conv widths and max-pools ("M"); the default is VGG-16's layout (13 conv layers, numbered from 1 as in the
    # paper).
    layers: list[Any] = field(default_factory=lambda: list(VGG16))
    in_channels: Size = 3
    num_classes: Size = 10
    image_size: Size = 32
    width: Positive = 1.0  # multiplies every conv width: small values run the same network on a CPU
    norm: str = "none"  # none | batch | noisy_batch | l1 | l2 | linf | layer (after each conv, before its ReLU)
    activation: str = "relu"  # relu (the paper's) | sigmoid | tanh
    norm_position: str = "pre"
    affine: bool = True
    bn_eps: Positive = 1.0e-5
    bn_momentum: Fraction = 0.1
    noise: Noise = field(default_factory=Noise)


@schema
class DLN:
    """Santurkar et al. 2018's deep linear network: `depth` linear layers of width x width, Glorot init, no bias
    (the network computes W_depth...W_1 x). The normalisation follows every layer but the last."""

    name: str = "dln"
    depth: Size = 25
    width: Size = 10
    in_features: Size = 10
    out_features: Size = 10
    bias: bool = False
    norm: str = "none"  # none | batch | noisy_batch | l1 | l2 | linf
    bn_eps: Positive = 1.0e-5
    bn_momentum: Fraction = 0.1
    noise: Noise = field(default_factory=Noise)


# ---- optimisers: `name`, `warmup_steps` and exactly the optimiser's keyword arguments (optim.build_optimizer) ----
@schema
class SGD:
    name: str = "sgd"
    lr: Positive = 0.01
    momentum: Fraction = 0.0
    dampening: Fraction = 0.0
    nesterov: bool = False
    weight_decay: NonNegative = 0.0
    # Linear learning-rate warm-up (Gilmer et al. 2022): step t of the first warmup_steps steps uses lr·t/warmup_steps.
    # 0: none; at most trainer.max_steps. Not an argument of the optimiser: optim.schedule applies it.
    warmup_steps: Every = 0


@schema
class Adam:
    """torch.optim.Adam, at its defaults."""

    name: str = "adam"
    lr: Positive = 0.001
    betas: Annotated[list[Annotated[float, Ge(0), Lt(1)]], MinLen(2), MaxLen(2)] = _list(0.9, 0.999)
    eps: Positive = 1e-8
    weight_decay: NonNegative = 0.0
    amsgrad: bool = False
    warmup_steps: Every = 0  # as SGD's


# ---- training ---------------------------------------------------------------------------------------------------
@schema
class Trainer:
    max_steps: Size = 50000
    batch_size: Size = 60
    eval_every: Every = 250  # full test-set evaluation (the article's notebook used 50)
    # With each evaluation, also this many training samples (a fixed random subset) in evaluation mode: rows
    # train/eval_acc and train/eval_loss, the training side of a generalisation gap. 0: none.
    eval_train: Every = 0
    probe_every: Every = 50  # activation percentiles on the fixed probe batch
    log_every: Size = 10  # training loss/accuracy are kept per step and stored as means over this window
    progress_every: Every = 0  # progress line cadence in steps; 0: about 20 lines per run
    # checkpoint.pt (weights, optimiser, every RNG stream, the metrics so far) and metrics.parquet, every N steps
    # and when a signal stops the run; running the same command again resumes from it. 0: only on a signal.
    checkpoint_every: Every = 5000
    # A run is 'diverged' when its loss stops being finite (it then stops), or when its training loss (the mean
    # over a log window) exceeds divergence_threshold times the first step's loss (null: never). 100 marks an MLP
    # at lr 10000 (1.3e5 against 2.7) and none of the committed reference runs (their highest 10-step mean is 23x
    # ln 10, the untrained loss: the MLP at lr 30 without BN).
    divergence_threshold: Annotated[float, Gt(1)] | None = 100
    stop_on_divergence: bool = True  # false: a diverged run trains on to max_steps (the whole curve)
    # torch intra-op threads. null: 1 for the MLP on a CPU (its small products are faster on one thread, and its
    # numbers are then those of make's one-thread jobs); torch's choice otherwise (1 per job under the parallel
    # launcher).
    threads: Size | None = None
    eval_batch_size: Size = 1000  # evaluation chunk for splits stored as uint8 images (CIFAR); MNIST goes in one pass
    # The MLP's hand-written backward (src/bnrepro/models/mlp_fused.py): bitwise the same as autograd, ~15% faster
    # steps on a CPU. auto: where it applies (model=mlp, norm none|batch, optim=sgd, no amp); false: always autograd.
    fused_step: AutoOrBool = "auto"
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
    # Probes inside a training step (the ics and landscape groups): every N steps.
    ics_every: Every = 0  # internal covariate shift: gradient of a layer before/after the earlier layers' update
    landscape_every: Every = 0  # loss and gradient along the gradient direction (Santurkar's loss landscape)


@schema
class Shift:
    """After training: evaluation under covariate shift, with BN's three ways to normalise
    (src/bnrepro/probes/shift.py; configs/experiment/mnist_shift.yaml)."""

    contrast: Annotated[list[Positive], MinLen(1)]  # factors the inputs are multiplied by
    brightness: Annotated[list[float], MinLen(1)]  # offsets added to them (then clipped to the pixel range)
    classes: Annotated[list[Size], MinLen(1)]  # numbers of classes kept (the first k)
    # shifted training images BN's statistics are gathered on again
    reestimate_samples: Annotated[int, Ge(2), Le(INT64)]
    single_images: Size  # images whose prediction is measured in many batches
    batches_per_image: Annotated[int, Ge(2), Le(INT64)]


@schema
class Probe:
    """Percentiles of each hidden layer's activation input (the sigmoid's input, after BN when BN is on)."""

    batch_size: Annotated[int, Ge(2), Le(INT64)] = 256  # a fixed probe batch drawn once from the test set
    # the "typical unit" (paper Fig 1b,c) whose distribution over the batch is tracked
    unit: Annotated[int, Ge(0), Le(INT64)] = 0
    percentiles: Annotated[list[Annotated[float, Ge(0), Le(100)]], MinLen(1)] = _list(15, 50, 85)
    # batch: BN normalises the probe batch with its own statistics, as in training (running stats untouched);
    # running: BN uses its running statistics, as at inference.
    bn_stats: Literal["batch", "running"] = "batch"
    layers: list[str] | None = None  # names from the model's taps (layer1, layer2, ...); null probes every one
    moments: bool = False  # also record each probed layer's pooled mean and std
    affine: bool = False  # also record the normalisation layers' scale and shift (gamma, beta)
    shift: Shift | None = None  # null: no evaluation under covariate shift
    init: bool = False  # at step 0: each layer's gradient norm and the effective rank of its batch representation
    # with every probe: each layer's weight norm, its cosine with its gradient, and its effective learning rate
    # η / ‖w‖² (probes/weights.py)
    weights: bool = False


@schema
class ICS:
    """Internal covariate shift, optimisation view (Santurkar et al. 2018, Def 2.1), every trainer.ics_every steps.
    Layer numbers from 1 (conv layers and the classifier for VGG, linear layers for the DLN); null: the model's
    defaults, VGG #5 and #10, deep linear network #9 and #17, MLP #2 and #3."""

    layers: list[Annotated[int, Ge(2), Le(INT64)]] | None = None  # layer #1 has no earlier layers to update


@schema
class Landscape:
    """The loss landscape along the gradient (Santurkar et al. 2018, App. A.2.2), every trainer.landscape_every
    steps: the loss and gradient at w - eta*g for `points` step sizes eta from eta_min*lr to eta_max*lr."""

    eta_min: Positive = 0.5
    eta_max: Positive = 4.0
    points: Annotated[int, Ge(1), Le(1000)] = 8  # each point is one more forward and backward per probe
    spacing: Literal["linear", "log"] = "linear"
    batched: bool = True  # every eta in one vmap call (false: a loop; the same numbers, for comparison)


@schema
class Wandb:
    name: str = "wandb"
    project: str = "bnrepro"
    entity: str | None = None
    mode: Literal["offline", "online", "disabled"] = SI("${oc.env:WANDB_MODE,offline}")  # WANDB_MODE overrides
    group: str = II("experiment_name")
    tags: list[str] = _list()
    # One W&B call per this many steps (a call costs ~0.3 ms), carrying the evaluation and probes due then;
    # metrics.parquet keeps the full record (probes every trainer.probe_every steps).
    log_every: Size = 250


@schema
class NoLogger:
    name: str = "none"


# ---- the whole config -------------------------------------------------------------------------------------------
@schema
class Figures:
    """What experiments/figures.py draws from an experiment's results: functions "module.name" in
    src/bnrepro/figures/, and the options of its summary table (bnrepro.collect.summarize). Set in experiment/*.yaml."""

    draw: list[str] = _list()
    summary: dict[str, Any] = field(default_factory=dict)


@schema
class Config:
    """configs/train.yaml composed: its own keys (Hydra's `base_train`), then one object per group, each an option's
    schema above (config.check picks it by the group's discriminator and checks it)."""

    experiment_name: str = "default"
    force: bool = False  # true: train again a run whose folder holds a finished run (or a checkpoint), from step 0
    fresh: bool = False  # true: a new folder (hydra.run.dir / hydra.sweep.dir), whatever ran before
    figures: Figures = field(default_factory=Figures)
    seed: Seed = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when available, for the VGG (plan.resolve_device)
    data: SkipValidation[Idx | Cifar10 | Linear] = None
    model: SkipValidation[MLP | VGG | DLN] = None
    optim: SkipValidation[SGD | Adam] = None
    trainer: SkipValidation[Trainer] = None
    probe: SkipValidation[Probe] = None
    ics: SkipValidation[ICS] = None
    landscape: SkipValidation[Landscape] = None
    logger: SkipValidation[Wandb | NoLogger] = None


# (group, option) -> its schema: what `group=option` composes, in configs/train.yaml and on the command line.
OPTIONS: dict[tuple[str, str], type] = {
    ("data", "cifar10"): Cifar10, ("data", "linear"): Linear,
    ("model", "mlp"): MLP, ("model", "vgg"): VGG, ("model", "dln"): DLN,
    ("optim", "sgd"): SGD, ("optim", "adam"): Adam,
    ("trainer", "default"): Trainer, ("probe", "activations"): Probe,
    ("ics", "default"): ICS, ("landscape", "default"): Landscape,
    ("logger", "wandb"): Wandb, ("logger", "none"): NoLogger,
}
BASES: dict[tuple[str, str], type] = {("base/data", "idx"): Idx}  # what yaml options build on (defaults lists)
GROUPS = ("data", "model", "optim", "trainer", "probe", "ics", "landscape", "logger")
# The key a composed group's schema is told by, in groups of several: data by its format, the others by their name.
DISCRIMINATORS = {"data": "format", "model": "name", "optim": "name", "logger": "name"}


def schemas(group: str) -> dict[str, type]:
    """The group's schemas (its options' and the bases its files build on) by their default of the group's
    discriminator; a group of one schema has it under ""."""
    key = DISCRIMINATORS.get(group)
    found = [schema for (g, _), schema in {**OPTIONS, **BASES}.items() if g in (group, f"base/{group}")]
    return {(schema.__dataclass_fields__[key].default if key else ""): schema for schema in found}
