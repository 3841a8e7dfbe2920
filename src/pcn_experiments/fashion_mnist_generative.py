"""`fashion-mnist-generative`: a PC generative decoder on Fashion-MNIST.

The decoder (latent z -> hidden -> image, section 5.2 and supplementary of
`papers/faster-pcns-via-better-initialization.txt`) is trained by inference learning with
the image clamped at the sensory node. A test image is reconstructed by clamping it,
inferring every other node, then decoding the inferred latent z with a forward pass.
Compared with a BP autoencoder whose decoder has the same shape.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from pcn.algorithms import BP, IL
from pcn.models import generative_mlp, mlp
from pcn.training import predict, reconstruct

from .common import TrainingRun, check_settings, load_subset, train_runs
from .output import markdown_table, save_figure
from .plots import curves as curves_figure
from .plots import image_grid
from .registry import Report, RunContext, choose_config, experiment


@dataclasses.dataclass(frozen=True)
class GenerativeConfig:
    decoder_sizes: tuple[int, ...]  # latent -> ... -> image
    activation: str
    epochs: int
    batch_size: int
    train_steps: int  # T during training
    eval_steps: int  # T when reconstructing test images
    gamma: float
    learning_rate: float

    def __post_init__(self) -> None:
        check_settings(self)


FULL = GenerativeConfig(
    decoder_sizes=(64, 256, 256, 256, 784),
    activation="tanh",
    epochs=10,
    batch_size=128,
    train_steps=20,
    eval_steps=100,
    gamma=0.1,
    learning_rate=1e-3,
)
QUICK = dataclasses.replace(FULL, epochs=1, eval_steps=30)
QUICK_DATA = {"train": 3000, "test": 300}


@experiment(
    "fashion-mnist-generative",
    "PC generative decoder on Fashion-MNIST: test reconstruction MSE vs a BP autoencoder",
    figure="pcn's own comparison of a PC decoder and a BP autoencoder: no paper figure",
)
def run(ctx: RunContext) -> Report:
    cfg = choose_config(ctx, FULL, QUICK)
    subset = QUICK_DATA if ctx.quick else {"train": None, "test": None}
    ds = load_subset("fashion-mnist", ctx, **subset)
    key_pc, key_ae = jax.random.split(jax.random.key(ctx.seed))
    decoder = generative_mlp(
        cfg.decoder_sizes, activation=cfg.activation, output_activation="sigmoid", key=key_pc
    )
    encoder_sizes = tuple(reversed(cfg.decoder_sizes))
    autoencoder = mlp(
        (*encoder_sizes, *cfg.decoder_sizes[1:]),
        activation=cfg.activation,
        output_activation="sigmoid",
        key=key_ae,
    )
    runs = {
        "pc": TrainingRun(
            decoder, IL(cfg.train_steps, gamma=cfg.gamma), lambda xb, yb: {"x": jnp.asarray(xb)}
        ),
        "bp_autoencoder": TrainingRun(
            autoencoder, BP(), lambda xb, yb: {"x": jnp.asarray(xb), "y": jnp.asarray(xb)}
        ),
    }
    eval_energy: dict[str, np.ndarray] = {}

    def reconstructions(label: str, graph, x: np.ndarray) -> np.ndarray:
        if label == "bp_autoencoder":
            return predict(graph, x)
        out, eval_energy["pc"] = reconstruct(graph, x, steps=cfg.eval_steps, gamma=cfg.gamma)
        return out

    def test_mse(label: str, graph) -> float:
        return float(np.mean((reconstructions(label, graph, ds.x_test) - ds.x_test) ** 2))

    runs_out, trained = train_runs(
        runs,
        ds,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        metric="test_mse",
        evaluate=test_mse,
        ctx=ctx,
    )
    curves = {k: v["test_mse"] for k, v in runs_out.items()}
    seconds = {k: sum(v["epoch_seconds"]) for k, v in runs_out.items()}
    shown = ds.x_test[:10]
    recon = {k: reconstructions(k, g, shown) for k, g in trained.items()}
    final_mse = {k: v[-1] for k, v in curves.items()}
    save_figure(
        image_grid(
            {"original": shown, "PC": recon["pc"], "BP AE": recon["bp_autoencoder"]},
            ds.image_shape,
        ),
        ctx.out / "reconstructions.png",
    )
    save_figure(curves_figure(curves, "test reconstruction MSE"), ctx.out / "test_mse.png")
    results = {
        "dataset": "fashion-mnist",
        "train_examples": len(ds.x_train),
        "test_examples": len(ds.x_test),
        "config": dataclasses.asdict(cfg),
        "epochs": cfg.epochs,
        "test_mse": final_mse,
        "test_mse_curves": curves,
        "train_seconds": seconds,
        "pc_eval_energy_trace_10_images": eval_energy["pc"],
    }
    rows = [[k, final_mse[k], seconds[k]] for k in ("pc", "bp_autoencoder")]
    md = f"""# Fashion-MNIST generative PC decoder

Decoder {"-".join(map(str, cfg.decoder_sizes))} (latent z to image), {cfg.activation} hidden,
sigmoid output, squared-error energies. PC: inference learning with the image clamped,
latent and hidden values starting from a forward pass of z = 0, T = {cfg.train_steps}
SGD steps (gamma = {cfg.gamma}) per batch, then one Adam update (lr {cfg.learning_rate}).
Test reconstruction: clamp the image, infer for T = {cfg.eval_steps} steps, decode the
inferred z with a forward pass; MSE per pixel against the original.
BP autoencoder: encoder {"-".join(map(str, encoder_sizes))} and a decoder of the same shape
as PC's, trained by backprop on the same MSE with the same optimiser and batches.
{cfg.epochs} epochs, batch {cfg.batch_size}, {len(ds.x_train)} training and
{len(ds.x_test)} test images.

{markdown_table(["model", "test MSE", "train s"], rows)}

![reconstructions](reconstructions.png)
![test MSE per epoch](test_mse.png)
"""
    return Report(results, md)
