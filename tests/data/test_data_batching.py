"""Seeded mini-batching and one-hot targets."""

from __future__ import annotations

import numpy as np
import pytest

from pcn.data import batches, one_hot, stream_aligned_batches

N = 103


@pytest.fixture
def xy():
    x = np.arange(N, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    return x, np.arange(N, dtype=np.int64)


def _order(x, y, seed, **kwargs):
    return np.concatenate([yb for _, yb in batches(x, y, 10, key_or_seed=seed, **kwargs)])


def test_the_same_seed_gives_the_same_order(xy):
    np.testing.assert_array_equal(_order(*xy, seed=5), _order(*xy, seed=5))


def test_different_seeds_give_different_orders(xy):
    assert not np.array_equal(_order(*xy, seed=5), _order(*xy, seed=6))


def test_without_drop_last_an_epoch_covers_every_example_exactly_once(xy):
    got = list(batches(*xy, 10, key_or_seed=0, drop_last=False))
    assert [len(yb) for _, yb in got] == [10] * 10 + [3]
    seen = np.concatenate([yb for _, yb in got])
    assert sorted(seen.tolist()) == list(range(N))


def test_with_drop_last_every_batch_is_full_and_no_example_repeats(xy):
    got = list(batches(*xy, 10, key_or_seed=0))
    assert [len(yb) for _, yb in got] == [10] * 10
    seen = np.concatenate([yb for _, yb in got])
    assert len(set(seen.tolist())) == 100


def test_inputs_and_labels_stay_paired_after_shuffling(xy):
    for xb, yb in batches(*xy, 7, key_or_seed=1):
        np.testing.assert_array_equal(xb[:, 0], yb.astype(np.float32))


def test_without_shuffle_batches_follow_the_original_order(xy):
    np.testing.assert_array_equal(_order(*xy, seed=0, shuffle=False, drop_last=False), xy[1])


def test_a_jax_key_fixes_the_order_like_an_int_seed(xy):
    jax = pytest.importorskip("jax")
    same = [_order(*xy, seed=jax.random.key(3)), _order(*xy, seed=jax.random.key(3))]
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(same[0], _order(*xy, seed=jax.random.key(4)))
    np.testing.assert_array_equal(_order(*xy, seed=jax.random.PRNGKey(3)), same[0])


@pytest.mark.parametrize("bad", [0, -2])
def test_a_batch_size_below_one_raises_an_error_naming_batch_size(xy, bad):
    with pytest.raises(ValueError, match="batch_size"):
        batches(*xy, bad, key_or_seed=0)


def test_a_non_integer_batch_size_raises_an_error_naming_batch_size(xy):
    with pytest.raises(TypeError, match="batch_size"):
        batches(*xy, 2.5, key_or_seed=0)


def test_a_batch_larger_than_the_data_with_drop_last_is_an_error_not_an_empty_epoch(xy):
    with pytest.raises(ValueError, match="batch_size"):
        batches(*xy, N + 1, key_or_seed=0)
    assert len(list(batches(*xy, N + 1, key_or_seed=0, drop_last=False))) == 1


def test_mismatched_x_and_y_lengths_are_rejected(xy):
    with pytest.raises(ValueError, match="different lengths"):
        batches(xy[0], xy[1][:-1], 4, key_or_seed=0)


def test_a_negative_seed_is_rejected_naming_key_or_seed(xy):
    with pytest.raises(ValueError, match="key_or_seed"):
        batches(*xy, 4, key_or_seed=-1)


def test_one_hot_puts_a_single_float32_one_at_each_label():
    out = one_hot(np.array([2, 0, 1]), 4)
    assert out.dtype == np.float32 and out.shape == (3, 4)
    np.testing.assert_array_equal(out, np.eye(4, dtype=np.float32)[[2, 0, 1]])


def test_one_hot_rejects_labels_outside_the_class_range():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot(np.array([0, 3]), 3)


@pytest.fixture
def labelled():
    """30 examples of 3 classes, 12 / 10 / 8 of them, x holding each example's index."""
    y = np.array([0] * 12 + [1] * 10 + [2] * 8)
    return np.arange(len(y))[:, None], np.random.default_rng(0).permutation(y)


def test_stream_aligned_batches_put_every_class_in_its_own_block_of_rows(labelled):
    x, y = labelled
    epoch = list(stream_aligned_batches(x, y, 6, key_or_seed=1))
    assert len(epoch) == 4  # the smallest class, 8 examples, fills 4 blocks of 2
    for xb, yb in epoch:
        assert yb.tolist() == [0, 0, 1, 1, 2, 2]  # row i: the same class in every batch
        np.testing.assert_array_equal(y[xb[:, 0]], yb)  # inputs stay with their labels
    seen = np.concatenate([xb[:, 0] for xb, _ in epoch])
    assert len(set(seen.tolist())) == len(seen)  # no example twice in an epoch
    assert set(seen[y[seen] == 2].tolist()) == set(np.flatnonzero(y == 2).tolist())


def test_stream_aligned_batches_are_seeded(labelled):
    x, y = labelled

    def order(seed):
        return [xb[:, 0].tolist() for xb, _ in stream_aligned_batches(x, y, 6, key_or_seed=seed)]

    assert order(3) == order(3)
    assert order(3) != order(4)


@pytest.mark.parametrize(
    ("batch_size", "num_classes", "message"),
    [
        (7, None, r"batch_size \(7\) must be a positive multiple of the 3 classes.*batch_size=6"),
        (2, None, r"batch_size \(2\) must be a positive multiple.*batch_size=3"),
        (30, None, r"class 2 has 8 examples, fewer than one block of 10.*batch_size <= 24"),
        (8, 4, r"class 3 has 0 examples"),
    ],
)
def test_stream_aligned_batches_that_cannot_be_formed_are_errors_naming_the_fix(
    labelled, batch_size, num_classes, message
):
    x, y = labelled
    with pytest.raises(ValueError, match=message):
        stream_aligned_batches(x, y, batch_size, key_or_seed=0, num_classes=num_classes)


def test_stream_aligned_batches_need_class_indices_not_one_hot_rows(labelled):
    x, y = labelled
    with pytest.raises(ValueError, match="1-D integer class indices.*not one-hot"):
        stream_aligned_batches(x, one_hot(y, 3), 6, key_or_seed=0)
