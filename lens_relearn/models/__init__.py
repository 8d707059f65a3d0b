"""Models: loading TransformerLens bridges offline, and their neuron sites."""

from lens_relearn.models.loading import known_specs, load_model
from lens_relearn.models.sites import Neuron, NeuronSite, neuron_site, neuron_sites

__all__ = ["Neuron", "NeuronSite", "known_specs", "load_model", "neuron_site", "neuron_sites"]
