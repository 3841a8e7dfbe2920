"""PC graphs (thesis chapter 5): learning on arbitrary topologies, one model, many queries.

- `topology`: binary adjacency masks `M` (Eq. 5.1, Fig. 5.5) with named neuron groups.
- `build`: `pc_graph(topology)`, a `pcn.PCGraph` with one node per group, one edge per block.
- `query`: query by conditioning (Eq. 5.5) and by initialisation (Eq. 5.6), relaxed to a
  tolerance; `tasks`: classify, generate, complete, denoise on top of them.
- `train`: Algorithm 8 (`pcn.IL` from zeros, Adam with weight decay on the weights).

Example (images `(batch, 64)`, labels `(batch,)` class indices):

    topology = fully_connected(174, sensory=64, labels=10)
    graph = pc_graph(topology, activation="tanh", key=key, weight_scale=0.3)
    step = trainer(graph, steps=50, gamma=0.2, learning_rate=1e-3, weight_decay=1e-4)
    state = step.init(graph)
    state, info = step(state, batch(graph, images, labels))  # repeat over batches
    graph = step.graph(state)
    relax = dict(stop=pcn.Tolerance(tol=1e-5, max_steps=2000), gamma=0.1)
    classify(graph, test_images, **relax).output
    generate(graph, jnp.arange(10), **relax).output

On sklearn's 8x8 digits (1400 train / 397 test, 10 epochs of batch 50) these settings
classify 91% of the test digits by conditioning, and generate one digit of each class.
Queries want a smaller value step than training (gamma 0.5 oscillates in a fully
connected graph; the result then reports `converged=False`).
"""

from .build import MaskedBlock as MaskedBlock
from .build import TopK as TopK
from .build import pc_graph as pc_graph
from .build import top_k as top_k
from .build import weight_matrix as weight_matrix
from .query import condition as condition
from .query import fix_neurons as fix_neurons
from .query import initialise as initialise
from .stability import curvature_bound as curvature_bound
from .stability import stable_gamma as stable_gamma
from .tasks import TaskResult as TaskResult
from .tasks import classify as classify
from .tasks import complete as complete
from .tasks import denoise as denoise
from .tasks import generate as generate
from .tasks import one_hot as one_hot
from .tasks import read_label as read_label
from .topology import Topology as Topology
from .topology import assemblies as assemblies
from .topology import check_mask as check_mask
from .topology import feedforward as feedforward
from .topology import fully_connected as fully_connected
from .topology import generative as generative
from .topology import refine as refine
from .topology import with_lateral as with_lateral
from .train import batch as batch
from .train import trainer as trainer
