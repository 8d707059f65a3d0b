"""lens_relearn: do language models relearn concepts whose neurons were pruned, and where?"""

from lens_relearn.errors import LensRelearnError
from lens_relearn.models import NeuronSite, known_specs, load_model, neuron_site, neuron_sites

__all__ = [
    "LensRelearnError",
    "NeuronSite",
    "known_specs",
    "load_model",
    "neuron_site",
    "neuron_sites",
]
