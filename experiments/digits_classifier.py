"""digits_classifier: SmallCNN on scikit-learn's handwritten digits; the feature network of the digits FID/IS.

Trains on the 1,437 training digits (resized to 16 px, random +-2 px shifts), evaluates top-1 accuracy on the
fixed 360-image test split, writes ``metrics.jsonl``, checkpoints and ``predictions.png`` (test digits captioned with
their predicted class, red when wrong). The code is ``experiments/_digits_classifier.py``, shared with
``dcgan_digits``, which reads this experiment's checkpoint with ``load_classifier(workdir)``.
"""
from experiments._digits_classifier import NAME, TINY, Config, evaluate, train

EVAL_KEYS = ()

__all__ = ["NAME", "TINY", "Config", "evaluate", "train", "EVAL_KEYS"]
