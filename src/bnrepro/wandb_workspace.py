"""A W&B workspace whose sections are an experiment's figures, built from its composed config: the training curves
(article Fig 2; Santurkar Fig 1), the activation percentiles (article Figs 3-4), the loss landscape, internal
covariate shift and the effective learning rate where the experiment probes them. Each line plot groups the runs
by variant (the run config's top-level `variant`) with a ±1 sd band over seeds; a learning rate filters them.
The metric names come from the probes' own spelling and the model's layers, as the runs log them."""

from __future__ import annotations

import torch

from bnrepro.config.schema import Config
from bnrepro.models import build_model
from bnrepro.probes.percentiles import metric_key


def _line(title: str, ys: list[str], log_y: bool = False):
    import wandb_workspaces.reports.v2 as wr

    return wr.LinePlot(title=title, x="Step", y=ys, log_y=log_y or None, groupby=wr.Config("variant"),
                       groupby_aggfunc="mean", groupby_rangefunc="stddev")


def sections(c: Config) -> list[tuple[str, list]]:
    """(section name, line plots) for what the experiment's runs log."""
    from bnrepro.data import TASKS

    t, p = c.trainer, c.probe
    accuracy = [_line("test accuracy", ["test/acc"]), _line("training accuracy", ["train/acc"])] \
        if TASKS.get(c.data.format) == "classification" else []  # a regression (the deep linear network) has none
    out = [("Training curves (article Fig 2; Santurkar et al. Fig 1)", [
        *accuracy, _line("training loss", ["train/loss"], log_y=True), _line("test loss", ["test/loss"], log_y=True)])]
    with torch.device("meta"):
        model = build_model(c.model)
    taps = list(model.taps())
    if t.probe_every:
        layers = [name for name in taps if p.layers is None or name in p.layers]
        pct = [f"p{q:g}" for q in p.percentiles]
        last = layers[-1]
        out.append(("Activations: the last hidden layer (article Fig 3)", [
            _line(f"{last}, the typical unit's percentiles", [metric_key(last, "unit", s) for s in pct]),
            _line(f"{last}, all units pooled", [metric_key(last, "pooled", s) for s in pct])]))
        out.append(("Activations: every hidden layer (article Fig 4)",
                    [_line(f"{name}, pooled percentiles", [metric_key(name, "pooled", s) for s in pct])
                     for name in layers]))
        if p.weights:
            n = len(model.layers())
            out.append(("Weights: norm, cos(W, ∇W), effective learning rate (Arora et al. 2019)", [
                _line(f"layer{i}: {stat}", [f"weights/layer{i}/{stat}"], log_y=stat == "eff_lr")
                for i in range(1, n) for stat in ("eff_lr", "norm", "cos")]))
    if t.landscape_every:
        out.append(("Loss landscape (Santurkar et al. Figs 4, 11)", [
            _line("loss along the gradient: min and max over η", ["landscape/loss_min", "landscape/loss_max"],
                  log_y=True),
            _line("gradient predictiveness: ‖Δg‖ min and max over η", ["landscape/gpred_min", "landscape/gpred_max"],
                  log_y=True),
            _line("effective β-smoothness", ["landscape/beta"], log_y=True),
            _line("gradient norm", ["landscape/gnorm"], log_y=True)]))
    if t.ics_every:
        layers = c.ics.layers or list(type(model).ICS_LAYERS)
        out.append(("Internal covariate shift (Santurkar et al. Fig 3)", [
            _line(f"layer{i}: {stat}", [f"ics/layer{i}/{stat}"]) for i in layers for stat in ("l2", "cos")]))
    return out


def workspace(c: Config, entity: str, project: str, lr: float | None = None):
    """The experiment's workspace; `lr`: show only the runs at that learning rate."""
    import wandb_workspaces.workspaces as ws

    filters = [ws.Metric("Group") == c.experiment_name]
    if lr is not None:
        filters.append(ws.Config("lr") == lr)
    return ws.Workspace(
        entity=entity, project=project, name=f"bnrepro: {c.experiment_name}" + (f", lr {lr:g}" if lr else ""),
        sections=[ws.Section(name=name, panels=panels, is_open=True) for name, panels in sections(c)],
        runset_settings=ws.RunsetSettings(filters=ws.And(*filters), groupby=[ws.Config("variant")]))


def metrics(sections_: list[tuple[str, list]]) -> set[str]:
    """Every metric the sections' panels plot."""
    return {y for _, panels in sections_ for panel in panels for y in panel.y}
