"""pcn: predictive coding networks in JAX.

A model is a graph of value nodes with an energy (`PCGraph`); inference relaxes the
free values, learning updates the edge weights at the relaxed values.
"""

from . import activations as activations
from . import energies as energies
from . import layers as layers
from . import pcgraphs as pcgraphs
from . import vae as vae
from . import zil as zil
from .activations import get_activation as get_activation
from .algorithms import BP as BP
from .algorithms import IL as IL
from .algorithms import StepInfo as StepInfo
from .algorithms import TrainState as TrainState
from .algorithms import TrainStep as TrainStep
from .algorithms import bp_loss as bp_loss
from .algorithms import init_optimizer as init_optimizer
from .algorithms import make_train_step as make_train_step
from .algorithms import parameters as parameters
from .algorithms import update_weights as update_weights
from .alignment import Alignment as Alignment
from .alignment import update_alignment as update_alignment
from .alignment import weight_update as weight_update
from .architectures import cnn as cnn
from .architectures import resnet as resnet
from .architectures import rnn as rnn
from .architectures import rnn_batch as rnn_batch
from .architectures import transformer as transformer
from .checkpoint import checkpoint_path as checkpoint_path
from .checkpoint import latest_checkpoint as latest_checkpoint
from .checkpoint import load_checkpoint as load_checkpoint
from .checkpoint import save_checkpoint as save_checkpoint
from .energies import Bernoulli as Bernoulli
from .energies import BernoulliLogits as BernoulliLogits
from .energies import Categorical as Categorical
from .energies import DiagonalGaussian as DiagonalGaussian
from .energies import Gaussian as Gaussian
from .energies import MonteCarloKL as MonteCarloKL
from .energies import ReparamGaussian as ReparamGaussian
from .energies import SoftmaxCategorical as SoftmaxCategorical
from .graph import Bias as Bias
from .graph import Edge as Edge
from .graph import Node as Node
from .graph import PCGraph as PCGraph
from .inference import Inference as Inference
from .inference import NonFiniteEnergyError as NonFiniteEnergyError
from .inference import Relaxation as Relaxation
from .inference import infer as infer
from .inference import relax as relax
from .init import forward_init as forward_init
from .init import normal_init as normal_init
from .init import zeros_init as zeros_init
from .language_model import language_model as language_model
from .language_model import lm_batch as lm_batch
from .language_model import next_token_log_probs as next_token_log_probs
from .language_model import perplexity as perplexity
from .levels import is_levelled as is_levelled
from .levels import level_graph as level_graph
from .levels import node_levels as node_levels
from .memory import StepMemory as StepMemory
from .memory import step_memory as step_memory
from .models import generative_mlp as generative_mlp
from .models import mlp as mlp
from .training import accuracy as accuracy
from .training import predict as predict
from .training import reconstruct as reconstruct
from .training import train_epoch as train_epoch
from .vae import ForwardEnergyBP as ForwardEnergyBP
from .vae import vae_mlp as vae_mlp
from .zero_divergence import ZIL as ZIL
from .zero_divergence import zil_gradients as zil_gradients

__version__ = "0.1.0"
