"""The removals an arm can name; importing this package registers them (``lens_relearn.study.removal``).

- ``concept``: the concept's best-ranked neurons on the base model (``ranked``);
- ``random``: as many neurons drawn at random from the site, the baseline (``drawn``);
- ``none``: nothing, the control (``none``).
"""

from lens_relearn.removals.drawn import RandomNeurons
from lens_relearn.removals.none import NoRemoval
from lens_relearn.removals.ranked import ConceptNeurons
from lens_relearn.study.removal import register_removal

for _removal in (ConceptNeurons(), RandomNeurons(), NoRemoval()):
    register_removal(_removal, replace=True)

__all__ = ["ConceptNeurons", "NoRemoval", "RandomNeurons"]
