"""Experiment loggers. W&B runs offline unless asked otherwise, and nothing ever waits on the network."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from bnrepro.io_utils import reachable

log = logging.getLogger(__name__)


class NullLogger:
    def log(self, metrics: dict, step: int) -> None:
        pass

    def finish(self, exit_code: int = 0, summary: dict | None = None) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class WandbLogger:
    """One W&B run per run folder. Its group is the experiment (logger.group) and its job type the variant and
    learning rate, so W&B's "group by" draws one seed band per variant and lr; the tags say the same for filters.

    A resumed run continues its W&B run. Online, W&B does that itself (the same id, resume="allow"). Offline, wandb
    writes a new offline-run folder for the same id, which holds only what is logged after the resume, and syncing
    it can replace the first folder's history. So offline, the calls sent so far go into the checkpoint
    (state_dict), and a resumed run replays them into its new folder and removes the run's earlier folders: one
    folder per run, holding its whole history, as if it had never stopped."""

    def __init__(self, cfg, run_dir: Path, config: dict, name: str, run_id: str | None = None,
                 identity: dict | None = None):
        import wandb

        identity = identity or {}
        job = [str(identity["variant"])] if "variant" in identity else []
        job += [f"lr={identity['lr']:g}"] if "lr" in identity else []
        tags = [str(identity["experiment"])] if "experiment" in identity else []

        mode = cfg.mode
        if mode == "online" and not reachable(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")):
            log.warning("W&B online mode requested but the server is unreachable: logging offline instead "
                        "(upload later with `wandb sync`).")
            mode = "offline"
        self.offline = mode == "offline"
        self.history: list[tuple[int, dict]] = []  # offline: every call so far, for a resumed run to replay
        # What a sweep is grouped and filtered by, at the top of the config beside the nested groups: the variant
        # (computed from several model keys), the learning rate, the seed and the experiment.
        top = {k: identity[k] for k in ("experiment", "variant", "lr", "seed") if k in identity}
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group,
            job_type=" ".join(job) or None,
            name=name,
            tags=list(dict.fromkeys([*tags, *job, *map(str, cfg.tags)])),
            config={**config, **top},
            dir=str(run_dir),
            mode=mode,
            id=run_id,
            resume="allow" if run_id else None,  # the same run folder continues the same W&B run
            settings=wandb.Settings(console="off", init_timeout=30, silent=True),
        )

        # Accuracies summarised by their best (max), losses by theirs (min), while a run goes on; every metric against
        # the training step.
        self.run.define_metric("step", hidden=True)
        self.run.define_metric("*", step_metric="step")
        for name in ("train/acc", "test/acc", "train/eval_acc"):
            self.run.define_metric(name, summary="max")
        for name in ("train/loss", "test/loss", "train/eval_loss"):
            self.run.define_metric(name, summary="min")

    def log(self, metrics: dict, step: int) -> None:
        self.run.log({"step": step, **{wandb_key(k): v for k, v in metrics.items()}}, step=step)
        if self.offline:
            self.history.append((step, metrics))

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        """Offline: replay the calls made before the checkpoint into this run's folder, then remove the run's earlier
        folders (what they hold beyond the checkpoint, the resumed run computes again)."""
        history = state.get("history")  # none in a checkpoint written before the replay existed
        if not self.offline or not history:
            return
        for step, metrics in history:
            self.log(metrics, step)
        folder = Path(self.run.dir).parent  # <wandb dir>/offline-run-<time>-<id>/files
        for earlier in folder.parent.glob(f"offline-run-*-{self.run.id}"):
            if earlier != folder:
                shutil.rmtree(earlier)

    def finish(self, exit_code: int = 0, summary: dict | None = None) -> None:
        """`summary`: the run's final values (run.json's), which W&B's run table shows as columns."""
        self.run.summary.update({k: v for k, v in (summary or {}).items() if v is not None})
        self.run.finish(exit_code=exit_code)


def wandb_key(metric: str) -> str:
    """A metric's name in W&B, whose sections are the names' first parts: the landscape probe's per-step-size
    values (landscape/eta/<η>/...) go into a section of their own, so that `landscape` holds what the figure reads."""
    return ETA_SECTION + metric.removeprefix("landscape/eta") if metric.startswith("landscape/eta/") else metric


ETA_SECTION = "landscape_eta"


def build_logger(cfg, run_dir: Path, config: dict, name: str, run_id: str | None = None,
                 identity: dict | None = None):
    """cfg: the logger group (config.schema: Wandb, NoLogger)."""
    if cfg.name == "none" or cfg.mode == "disabled":
        return NullLogger()
    return WandbLogger(cfg, run_dir, config, name, run_id, identity)
