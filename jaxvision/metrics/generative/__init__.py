"""Generative-model metrics: FID (and its image pipeline and CLI), IS, KID, streaming statistics, feature
networks (pytorch-fid's Inception or any Flax classifier) and mode-collapse statistics."""
from jaxvision.metrics.generative.feature_networks import FeatureNetwork, feature_fn_from_flax, load_fid_inception
from jaxvision.metrics.generative.fid_pipeline import FIDResult, compute_statistics, extract_features, fid
from jaxvision.metrics.generative.frechet import frechet_distance, frechet_distance_from_features
from jaxvision.metrics.generative.isc import MeanStd, inception_score
from jaxvision.metrics.generative.kid import kernel_inception_distance
from jaxvision.metrics.generative.mode_collapse import mode_collapse_stats, nearest_modes
from jaxvision.metrics.generative.stats import RunningStats, load_stats, save_stats
