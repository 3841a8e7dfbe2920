"""`digits-mlp` (what `pcn demo` runs): BP vs PC on scikit-learn's bundled digits, the
embedded data that needs nothing else; seconds on a laptop CPU."""

from __future__ import annotations

import dataclasses

from .common import SupervisedConfig, compare_bp_pc, load_subset, supervised_mlp
from .output import markdown_table, save_figure
from .plots import curves as curves_figure
from .registry import Report, RunContext, choose_config, experiment

FULL = SupervisedConfig(
    sizes=(64, 64, 64, 10),
    activation="tanh",
    epochs=30,
    batch_size=32,
    steps=20,
    gamma=0.1,
    learning_rate=1e-3,
)
QUICK = dataclasses.replace(FULL, epochs=5)


@experiment(
    "digits-mlp",
    "BP vs PC on scikit-learn's digits (the `pcn demo`, no download)",
    figure="the `pcn demo` run: no paper figure",
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    ds = load_subset("digits", ctx, train=None, test=None)
    graph = supervised_mlp(cfg, ctx.seed)
    out = compare_bp_pc(graph, ds, cfg, ctx)
    curves = out["curves"]
    accuracies = {k.upper(): c["test_accuracy"] for k, c in curves.items()}
    fig = curves_figure(accuracies, "test accuracy (%)", "digits MLP", scale=100)
    save_figure(fig, ctx.out / "accuracy.png")
    save_figure(
        curves_figure(
            {"PC": out["energy_trace"]},
            "energy per example",
            "PC relaxation energy, last epoch (mean)",
            first=0,
            xlabel="relaxation step t",
            log=True,
        ),
        ctx.out / "energy.png",
    )
    final = {k: c["test_accuracy"][-1] for k, c in curves.items()}
    results = {
        "dataset": "digits",
        "config": dataclasses.asdict(cfg),
        "epochs": cfg.epochs,
        "test_accuracy": final,
        "ms_per_step": {k: c["ms_per_step"] for k, c in curves.items()},
        "curves": curves,
        "energy_trace_last_epoch": out["energy_trace"],
    }
    rows = [[k.upper(), f"{100 * final[k]:.2f}%", results["ms_per_step"][k]] for k in curves]
    md = f"""# Digits MLP: BP vs PC

MLP {"-".join(map(str, cfg.sizes))}, {cfg.activation}, {cfg.output} output (precision
{cfg.output_precision}); Adam
(lr {cfg.learning_rate}); batch {cfg.batch_size}; {cfg.epochs} epochs on
{len(ds.x_train)} images, tested on {len(ds.x_test)}. PC: T = {cfg.steps}, gamma = {cfg.gamma}.

{markdown_table(["method", "test accuracy", "ms/step"], rows)}

![accuracy](accuracy.png)
![energy](energy.png)
"""
    return Report(results, md)
