"""lens_relearn: do language models relearn concepts whose neurons were pruned, and where?

The subpackages follow the pipeline: ``models`` -> ``data`` -> ``tagger`` -> ``neurons`` ->
``study`` -> ``removals`` -> ``analyses`` -> ``views``; each imports only from the ones before it.
Importing the package registers the built-in removals and analyses.
"""

import lens_relearn.analyses
import lens_relearn.removals
from lens_relearn.errors import LensRelearnError
from lens_relearn.study import (
    Analysis,
    ExperimentConfig,
    load_stage,
    preset,
    register_analysis,
    run_experiment,
)
