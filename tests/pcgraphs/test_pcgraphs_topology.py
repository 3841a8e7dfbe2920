"""Adjacency masks of the topologies of thesis Fig. 5.5 and the graphs built from them."""

import jax
import numpy as np
import pytest

import pcn
from pcn.pcgraphs import (
    Topology,
    assemblies,
    feedforward,
    fully_connected,
    generative,
    pc_graph,
    refine,
    top_k,
    weight_matrix,
    with_lateral,
)


def test_a_fully_connected_mask_has_every_connection_but_the_diagonal_and_cycles():
    t = fully_connected(7, sensory=4, labels=2)
    assert t.mask.sum() == 7 * 6
    assert not np.diag(t.mask).any()
    assert t.cycles()
    assert {g: len(i) for g, i in t.groups.items()} == {"sensory": 4, "label": 2, "hidden": 1}


def test_a_feedforward_mask_connects_each_layer_to_the_next_only_and_has_no_cycle():
    t = feedforward([4, 3, 2], labels=2)
    assert list(t.groups) == ["sensory", "hidden_1", "hidden_2", "label"]
    assert t.mask.sum() == 4 * 3 + 3 * 2 + 2 * 2
    assert t.block("sensory", "hidden_1").all() and not t.block("hidden_1", "sensory").any()
    assert not t.cycles()


def test_a_generative_mask_points_from_the_top_layer_down_to_the_sensory_neurons():
    t = generative([4, 3], labels=2)
    assert t.block("label", "hidden_1").all() and t.block("hidden_1", "sensory").all()
    assert not t.block("sensory", "hidden_1").any()
    assert t.mask.sum() == 2 * 3 + 3 * 4
    assert not t.cycles()


def test_lateral_connections_add_a_recurrent_block_without_its_diagonal():
    t = with_lateral(generative([4, 3, 5]))
    assert t.block("hidden_1", "hidden_1").sum() == 3 * 2
    assert t.block("hidden_2", "hidden_2").sum() == 5 * 4
    assert not t.block("sensory", "sensory").any()
    assert not np.diag(t.mask).any() and t.cycles()


def test_assemblies_are_sparse_clusters_connected_in_a_chain_with_the_given_densities():
    t = assemblies(3, 60, 0.3, 0.1, key=jax.random.key(0))
    within = t.block("cluster_2", "cluster_2").sum() / (60 * 59)
    between = t.block("cluster_1", "cluster_2").sum() / 60**2
    assert 0.25 < within < 0.35 and 0.07 < between < 0.13
    assert not t.block("cluster_2", "cluster_1").any()
    assert not t.block("cluster_1", "cluster_3").any()
    assert not np.diag(t.mask).any() and t.cycles()


def test_a_layered_mask_builds_a_graph_of_block_sized_edges_and_no_n_by_n_weight():
    t = feedforward([16, 8, 4])
    graph = pc_graph(t, key=jax.random.key(0))
    shapes = sorted(graph.edge_module(e).weight.shape for e in graph.edges)
    assert shapes == [(4, 8), (8, 16)]
    assert graph.order == ("sensory", "hidden_1", "hidden_2")
    theta = weight_matrix(graph, t)
    assert np.all(np.asarray(theta)[~t.mask] == 0)


def test_a_recurrent_group_is_a_self_edge_refused_by_forward_init_and_accepted_by_zeros_init():
    graph = pc_graph(fully_connected(5, sensory=3), key=jax.random.key(0))
    assert any(e.parents == (e.child,) for e in graph.edges)
    for edge in graph.edges:  # only the recurrent block (diagonal excluded) needs a mask
        assert (graph.edge_module(edge).mask is None) == (edge.parents != (edge.child,))
    x = {"sensory": np.ones((2, 3), np.float32)}
    with pytest.raises(ValueError, match="needs a DAG"):
        pcn.forward_init(graph, x)
    assert np.isfinite(graph.energy(pcn.zeros_init(graph, x))).all()


def test_the_top_k_activation_keeps_the_k_strongest_neurons_of_a_cluster():
    f = top_k(0.4)
    out = np.asarray(f(np.array([0.1, 3.0, -2.0, 2.0, 0.5])))
    assert out.tolist() == [0.0, 3.0, 0.0, 2.0, 0.0]


def test_masks_of_the_wrong_shape_or_not_binary_or_with_a_diagonal_are_refused():
    with pytest.raises(ValueError, match="square"):
        Topology(np.zeros((3, 4)), {"a": range(3)})
    with pytest.raises(ValueError, match="binary"):
        Topology(np.full((3, 3), 0.5), {"a": range(3)})
    with pytest.raises(ValueError, match="empty diagonal"):
        Topology(np.eye(3), {"a": range(3)})
    with pytest.raises(ValueError, match="partition"):
        Topology(np.zeros((3, 3)), {"a": [0, 1]})
    with pytest.raises(ValueError, match="outside range"):
        Topology(np.zeros((3, 3)), {"a": [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="needs `groups`"):
        pc_graph(np.zeros((3, 3), bool), key=jax.random.key(0))
    with pytest.raises(IndexError, match="out of range"):
        fully_connected(3, sensory=1).locate(5)


def test_split_and_join_move_between_all_neurons_and_named_groups():
    t = with_lateral(feedforward([3, 2], labels=2))
    x = np.arange(14.0).reshape(2, 7)
    parts = t.split(x)
    assert parts["hidden_1"].tolist() == [[3.0, 4.0], [10.0, 11.0]]
    np.testing.assert_array_equal(t.join(parts), x)
    assert t.locate(5) == ("label", 0)


def test_refining_a_raw_layered_mask_recovers_its_layers_and_builds_block_sized_edges():
    layered = with_lateral(feedforward([4, 3, 2], labels=2), ["hidden_2"])
    coarse = Topology(layered.mask, {"sensory": range(4), "hidden": range(4, 11)})
    refined = refine(coarse)
    assert {g: i.tolist() for g, i in refined.groups.items()} == {
        "sensory": [0, 1, 2, 3],
        "hidden_1": [4, 5, 6],
        "hidden_2": [7, 8],
        "hidden_3": [9, 10],
    }
    graph = pc_graph(refined, key=jax.random.key(0))
    shapes = sorted(graph.edge_module(e).weight.shape for e in graph.edges)
    assert shapes == [(2, 2), (2, 2), (2, 3), (3, 4)]
    assert refine(fully_connected(6, sensory=3)).groups.keys() == {"sensory", "hidden"}
