"""Host-side region proposals (numpy, scikit-image): selective search (``selective_search``), proposal recall
(``proposal_recall``), and an on-disk cache computed in parallel worker processes (``cached_proposals``).

Imports nothing else of jaxvision: a CPU preprocessing step, like ``data``.
"""
from jaxvision.proposals.cache import cached_proposals, compute_proposals, pad_proposals
from jaxvision.proposals.evaluation import box_iou, proposal_recall
from jaxvision.proposals.search import MODES, RANKINGS, selective_search
