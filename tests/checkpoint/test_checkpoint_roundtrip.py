"""Checkpoints: exact round trips, atomic writes, clear errors, resuming a training run."""

from __future__ import annotations

import functools
import json
import os
import stat
import struct

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pcn
import pcn.checkpoint as checkpoint_module
from pcn.checkpoint import (
    FORMAT_VERSION,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    step_checkpoints,
)


def _model_and_adam_state(dtype=jnp.float32, width: int = 8):
    model = eqx.nn.MLP(3, 2, width, 2, key=jax.random.key(0), dtype=dtype)
    optimizer = optax.adam(1e-2)
    params = eqx.filter(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    # one real update, so the moments and the int32 count are not all zeros
    grads = jax.tree.map(lambda p: jnp.sin(p) + 0.25, params)
    _, opt_state = optimizer.update(grads, opt_state, params)
    return model, opt_state


def _build_tree(dtype=jnp.float32, width: int = 8):
    """An equinox model, its adam state, a typed PRNG key and an int32 array."""
    model, opt_state = _model_and_adam_state(dtype, width)
    return model, opt_state, jax.random.key(7), jnp.arange(5, dtype=jnp.int32)


@functools.cache
def _tree(dtype=jnp.float32, width: int = 8):
    """`_build_tree` compiled as one program and cached (the trees are immutable): run
    eagerly, each of its many small ops would be compiled, which takes seconds."""
    return eqx.filter_jit(_build_tree)(dtype, width)


def _tree_shapes(dtype=jnp.float32, width: int = 8):
    """The shapes and dtypes of `_build_tree` (traced only, nothing is computed)."""
    return eqx.filter_eval_shape(_build_tree, dtype, width)


def _arrays(tree) -> list[np.ndarray]:
    """The array leaves of `tree` on the host, PRNG keys as their raw data."""
    out = []
    for leaf in jax.tree.leaves(tree):
        if eqx.is_array(leaf):
            if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                leaf = jax.random.key_data(leaf)
            out.append(np.asarray(leaf))
    return out


def _assert_bitwise_equal(a, b) -> None:
    """Same structure, and every array leaf the same dtype, shape and bytes."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def _key_dtypes(tree) -> list[str]:
    return [str(leaf.dtype) for leaf in jax.tree.leaves(tree) if eqx.is_array(leaf)]


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_equinox_mlp_and_its_adam_state_round_trip_bit_for_bit(tmp_path, dtype):
    with jax.enable_x64(dtype == "float64"):
        tree = _tree(jnp.dtype(dtype))
        metadata = {"step": 120, "epoch": 3, "config": {"lr": 1e-2, "sizes": [3, 8, 2]}}
        path = save_checkpoint(tmp_path / "run" / "a.ckpt", tree, metadata=metadata)
        assert path == tmp_path / "run" / "a.ckpt"

        # a tree of the same structure with other values: zeros for the float leaves
        fresh = jax.tree.map(
            lambda x: jnp.asarray(np.zeros(x.shape, x.dtype)) if eqx.is_inexact_array(x) else x,
            tree,
        )
        loaded, loaded_metadata = load_checkpoint(path, fresh)

    assert loaded_metadata == metadata
    assert not np.any(np.asarray(fresh[0].layers[0].weight))
    _assert_bitwise_equal(loaded, tree)
    assert _key_dtypes(loaded) == _key_dtypes(tree)
    weight = loaded[0].layers[0].weight
    assert weight.dtype == jnp.dtype(dtype)
    assert loaded[1][0].count.dtype == jnp.int32
    assert str(loaded[2].dtype) == "key<fry>"
    # non-array leaves (the activation functions) come from `like`
    assert loaded[0].activation is fresh[0].activation


def test_loading_works_from_shape_specs_without_building_the_arrays(tmp_path):
    tree = _tree()
    save_checkpoint(tmp_path / "a.ckpt", tree)
    loaded, metadata = load_checkpoint(tmp_path / "a.ckpt", _tree_shapes())
    assert metadata == {}
    _assert_bitwise_equal(loaded, tree)


def test_numpy_leaves_come_back_as_numpy_with_their_dtype(tmp_path):
    tree = {"f64": np.linspace(0, 1, 6).reshape(2, 3), "u8": np.arange(4, dtype=np.uint8)}
    tree["scalar"] = np.float64(np.pi)
    save_checkpoint(tmp_path / "np.ckpt", tree)
    loaded, _ = load_checkpoint(tmp_path / "np.ckpt", tree)
    assert isinstance(loaded["f64"], np.ndarray) and loaded["f64"].dtype == np.float64
    assert loaded["f64"].tobytes() == tree["f64"].tobytes()
    assert loaded["u8"].dtype == np.uint8 and loaded["scalar"] == np.pi


def test_metadata_that_is_not_json_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "a.ckpt", _tree(), metadata={"f": object()})
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- atomic writes


def _fail_mid_payload(monkeypatch):
    """The serialiser writes part of the payload, then fails."""
    real = checkpoint_module._write_payload

    def broken(f, arrays, digest):
        real(f, arrays[:1], digest)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(checkpoint_module, "_write_payload", broken)
    return OSError


def _fail_fsync(monkeypatch):
    def broken(fd):
        raise OSError("fsync failed (simulated)")

    monkeypatch.setattr(os, "fsync", broken)
    return OSError


def _fail_replace(monkeypatch):
    def broken(src, dst):
        raise OSError("rename failed (simulated)")

    monkeypatch.setattr(os, "replace", broken)
    return OSError


def _interrupt_mid_payload(monkeypatch):
    def broken(f, arrays, digest):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module, "_write_payload", broken)
    return KeyboardInterrupt


@pytest.mark.parametrize(
    "crash", [_fail_mid_payload, _fail_fsync, _fail_replace, _interrupt_mid_payload]
)
def test_a_crash_while_writing_leaves_the_previous_checkpoint_byte_identical_and_no_temp_file(
    tmp_path, monkeypatch, crash
):
    path = tmp_path / "step-000005.ckpt"
    save_checkpoint(path, _tree(), metadata={"step": 5})
    before = path.read_bytes()

    error = crash(monkeypatch)
    newer = jax.tree.map(lambda x: x + 1 if eqx.is_inexact_array(x) else x, _tree())
    with pytest.raises(error):
        save_checkpoint(path, newer, metadata={"step": 6})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    _, metadata = load_checkpoint(path, _tree())
    assert metadata == {"step": 5}


def test_a_crash_while_writing_a_first_checkpoint_leaves_nothing_behind(tmp_path, monkeypatch):
    _fail_mid_payload(monkeypatch)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "a.ckpt", _tree())
    assert list(tmp_path.iterdir()) == []


def test_saving_over_a_checkpoint_replaces_it(tmp_path):
    path = tmp_path / "a.ckpt"
    save_checkpoint(path, _tree(), metadata={"step": 1})
    newer = jax.tree.map(lambda x: x * 2 if eqx.is_inexact_array(x) else x, _tree())
    save_checkpoint(path, newer, metadata={"step": 2})
    loaded, metadata = load_checkpoint(path, _tree())
    assert metadata == {"step": 2}
    _assert_bitwise_equal(loaded, newer)


# ----------------------------------------------------------------------------- bad files


def test_a_missing_file_raises_file_not_found_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_checkpoint(tmp_path / "nope.ckpt", _tree())


@pytest.mark.parametrize("keep", [0, 4, 15, 40, -300, -33, -1])
def test_a_truncated_checkpoint_raises_a_value_error(tmp_path, keep):
    path = save_checkpoint(tmp_path / "a.ckpt", _tree())
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(ValueError, match="truncated|corrupt") as info:
        load_checkpoint(path, _tree())
    assert str(path) in str(info.value)


def test_a_flipped_byte_is_caught_by_the_checksum(tmp_path):
    path = save_checkpoint(tmp_path / "a.ckpt", _tree())
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # inside the payload
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        load_checkpoint(path, _tree())


def test_a_file_that_is_not_a_checkpoint_raises_a_value_error(tmp_path):
    path = tmp_path / "a.ckpt"
    path.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(ValueError, match="not a pcn checkpoint"):
        load_checkpoint(path, _tree())


def test_a_checkpoint_from_a_newer_format_asks_to_upgrade(tmp_path):
    path = save_checkpoint(tmp_path / "a.ckpt", _tree())
    data = bytearray(path.read_bytes())
    data[8:12] = struct.pack("<I", FORMAT_VERSION + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="upgrade pcn"):
        load_checkpoint(path, _tree())


# ----------------------------------------------------------------------------- mismatches


def test_a_shape_mismatch_raises_a_value_error_naming_the_leaf_and_both_shapes(tmp_path):
    path = save_checkpoint(tmp_path / "a.ckpt", _tree(width=8))
    with pytest.raises(ValueError) as info:
        load_checkpoint(path, _tree_shapes(width=9))
    message = str(info.value)
    assert "float32[8,3]" in message and "float32[9,3]" in message
    assert "leaf 0" in message and ".layers[0].weight" in message


def test_a_dtype_mismatch_raises_a_value_error_naming_both_dtypes(tmp_path):
    path = save_checkpoint(tmp_path / "a.ckpt", {"w": jnp.zeros((2, 3), jnp.float32)})
    with pytest.raises(ValueError, match=r"float32\[2,3\].*int32\[2,3\]"):
        load_checkpoint(path, {"w": jnp.zeros((2, 3), jnp.int32)})


def test_a_structure_mismatch_raises_a_value_error(tmp_path):
    path = save_checkpoint(tmp_path / "a.ckpt", _tree())
    model, opt_state, _, _ = _tree()
    with pytest.raises(ValueError, match="leaves but `like` has"):
        load_checkpoint(path, (model, opt_state))
    save_checkpoint(tmp_path / "d.ckpt", {"a": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"\['a'\].*\['b'\]"):
        load_checkpoint(tmp_path / "d.ckpt", {"b": jnp.zeros(2)})


# ----------------------------------------------------------------------------- resuming


def test_checkpoint_path_pads_the_step_and_latest_checkpoint_picks_the_highest(tmp_path):
    assert checkpoint_path(tmp_path, 120) == tmp_path / "step-000120.ckpt"
    assert latest_checkpoint(tmp_path / "missing") is None
    assert latest_checkpoint(tmp_path) is None
    for step in (5, 120, 30, 1_000_000):
        save_checkpoint(checkpoint_path(tmp_path, step), {"w": jnp.zeros(2)})
    (tmp_path / ".step-9999999.ckpt.abc.tmp").write_bytes(b"half")  # a crashed write
    (tmp_path / "step-9999999.ckpt.bak").write_bytes(b"other")
    (tmp_path / "notes.txt").write_text("x")
    assert latest_checkpoint(tmp_path) == tmp_path / "step-1000000.ckpt"
    with pytest.raises(ValueError):
        checkpoint_path(tmp_path, -1)


def _batches(n: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(42)
    return [
        {
            "x": rng.normal(size=(16, 4)).astype(np.float32),
            "y": rng.normal(size=(16, 3)).astype(np.float32),
        }
        for _ in range(n)
    ]


@eqx.filter_jit
def _tiny_mlp(key: jax.Array) -> pcn.PCGraph:
    """`pcn.mlp([4, 8, 3])` built in one compiled program (eagerly it takes seconds)."""
    return pcn.mlp([4, 8, 3], key=key)


def test_resuming_from_a_checkpoint_continues_the_run_bit_for_bit(tmp_path):
    batches = _batches(10)
    graph = _tiny_mlp(jax.random.key(0))
    step = pcn.make_train_step(graph, pcn.BP(), optax.adam(1e-2))

    state = step.init(graph)
    for i, batch in enumerate(batches):
        if i == 5:
            save_checkpoint(checkpoint_path(tmp_path, i), state, metadata={"step": i})
        state, _ = step(state, batch)  # donates `state`: only the returned one is used
    uninterrupted = state

    # as a restarted run would: rebuild the model, find the checkpoint, load it into a
    # fresh state (the compiled step is reused only to save compiling it again)
    graph = _tiny_mlp(jax.random.key(0))
    path = latest_checkpoint(tmp_path)
    state, metadata = load_checkpoint(path, step.init(graph))
    for batch in batches[metadata["step"] :]:
        state, _ = step(state, batch)

    assert path == tmp_path / "step-000005.ckpt" and metadata == {"step": 5}
    _assert_bitwise_equal(state, uninterrupted)
    assert isinstance(state, pcn.TrainState)
    _assert_bitwise_equal(step.graph(state), step.graph(uninterrupted))


def test_a_checkpoint_is_mode_0644_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "a.ckpt", _tree())
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)  # the mode follows the umask of each write
        save_checkpoint(path, _tree())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_step_checkpoints_lists_the_step_files_by_number(tmp_path):
    for step in (10, 2, 100):
        save_checkpoint(checkpoint_path(tmp_path, step), {"a": jnp.ones(1)})
    (tmp_path / "step-notanumber.ckpt").write_bytes(b"")
    assert [p.name for p in step_checkpoints(tmp_path)] == [
        "step-000002.ckpt", "step-000010.ckpt", "step-000100.ckpt"
    ]  # fmt: skip
    assert step_checkpoints(tmp_path / "missing") == []
