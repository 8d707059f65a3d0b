"""The analyses a study runs; importing this package registers them (``lens_relearn.study.analysis``).

Each module is one analysis: what it measures, its tables and its summary section. Their report
sections and figures are in ``lens_relearn.views``.
"""

from lens_relearn.analyses.attacks import Attacks, AttacksSummary
from lens_relearn.analyses.blend import Blend, BlendSummary
from lens_relearn.analyses.collateral import Collateral, CollateralSummary
from lens_relearn.analyses.comparison import Comparison, ComparisonSummary
from lens_relearn.analyses.distance import Distance, DistanceSummary
from lens_relearn.analyses.probes import Probes, ProbesSummary
from lens_relearn.analyses.recovery import Recovery, RecoverySummary
from lens_relearn.analyses.redistribution import Redistribution, RedistributionSummary
from lens_relearn.analyses.regrowth import Regrowth, RegrowthSummary
from lens_relearn.analyses.relocation import Relocation, RelocationSummary
from lens_relearn.analyses.retraining import Retraining, RetrainingSummary
from lens_relearn.study.analysis import register_analysis

for _analysis in (
    Collateral(),
    Probes(),
    Recovery(),
    Retraining(),
    Relocation(),
    Redistribution(),
    Blend(),
    Regrowth(),
    Distance(),
    Attacks(),
    Comparison(),
):
    register_analysis(_analysis, replace=True)

__all__ = [
    "Attacks",
    "AttacksSummary",
    "Blend",
    "BlendSummary",
    "Collateral",
    "CollateralSummary",
    "Comparison",
    "ComparisonSummary",
    "Distance",
    "DistanceSummary",
    "Probes",
    "ProbesSummary",
    "Recovery",
    "RecoverySummary",
    "Redistribution",
    "RedistributionSummary",
    "Regrowth",
    "RegrowthSummary",
    "Relocation",
    "RelocationSummary",
    "Retraining",
    "RetrainingSummary",
]
