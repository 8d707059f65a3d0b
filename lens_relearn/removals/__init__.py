"""The removals an arm can name; importing this package registers them (``lens_relearn.study.removal``).

- ``concept``: the concept's best-ranked neurons on the base model (``ranked``);
- ``random``: as many neurons drawn at random from the site, the baseline (``drawn``);
- ``none``: nothing, the control (``none``);
- ``learned_mask``: as many neurons, chosen by a mask learned to forget the concept and keep the rest (``learned``);
- ``erase``: the concept erased linearly from the residual stream, layer after layer (``erased``).
"""

from lens_relearn.removals.drawn import RandomNeurons
from lens_relearn.removals.erased import ConceptErasure
from lens_relearn.removals.learned import LearnedMaskNeurons
from lens_relearn.removals.none import NoRemoval
from lens_relearn.removals.ranked import ConceptNeurons
from lens_relearn.study.removal import register_removal

for _removal in (ConceptNeurons(), RandomNeurons(), NoRemoval(), LearnedMaskNeurons(), ConceptErasure()):
    register_removal(_removal, replace=True)

__all__ = ["ConceptErasure", "ConceptNeurons", "LearnedMaskNeurons", "NoRemoval", "RandomNeurons"]
