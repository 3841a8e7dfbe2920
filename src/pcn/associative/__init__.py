"""Associative memories by predictive coding (thesis chapter 4), and one evaluation for
them and their baselines.

- `keys`: noisy, partial and random keys (`Key`).
- `protocol`: `Memory.recall(key) -> Recall`, what every memory offers.
- `scores`: hit counts at the thesis's thresholds, recall MSE, the Universal Hopfield
  Networks criterion, strict retrievals.
- `linear`: the linear recurrent PC memory (section 4.2).
- `generative`: the hierarchical generative PC memory (sections 4.3-4.5): F of Fig. 4.4
  for noisy keys, Algorithm 7 for partial ones.
- `captions`: caption vectors for hetero-associative memories (section 4.7).
- `hetero`: `[image | caption]` vectors and the keys that recall one part from the other.
"""

from . import captions, generative, hetero, keys, linear, protocol, scores
from .keys import Key
from .protocol import Memory, Recall

__all__ = [
    "Key",
    "Memory",
    "Recall",
    "captions",
    "generative",
    "hetero",
    "keys",
    "linear",
    "protocol",
    "scores",
]
