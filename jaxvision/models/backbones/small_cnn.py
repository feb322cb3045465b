"""SmallCNN: the digits classifier, returning penultimate features and logits.

Its features stand in for Inception's pool features when computing FID/IS on digits (see
``experiments.digits_classifier.load_classifier``).
"""
from __future__ import annotations

import functools

import flax.linen as nn


class SmallCNN(nn.Module):
    """conv-BN-ReLU x2, max-pool, conv-BN-ReLU x2, max-pool, flatten, dense features (ReLU), dense logits.

    Attributes:
      num_classes: number of output classes.
      widths: channels of the two conv stages.
      features: size of the penultimate feature vector.
      dropout: dropout rate before the classifier (train only).
      bn_axis_name: pmap axis to synchronise BatchNorm statistics over (None on one device).

    Call: ``(x float32 [B, H, W, C] in [0, 1], train: bool) -> (features float32 [B, features], logits float32
    [B, num_classes])``; H and W must be multiples of 4. With ``train=True`` pass ``mutable=['batch_stats']`` and
    a ``'dropout'`` rng.
    """

    num_classes: int = 10
    widths: tuple[int, int] = (32, 64)
    features: int = 128
    dropout: float = 0.25
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        bn = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                               axis_name=self.bn_axis_name if train else None)
        for w in self.widths:
            for _ in range(2):
                x = nn.relu(bn()(nn.Conv(w, (3, 3), use_bias=False)(x)))
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)  # [B, H/4 * W/4 * widths[-1]]
        feats = nn.relu(nn.Dense(self.features)(x))  # [B, features]
        h = nn.Dropout(self.dropout, deterministic=not train)(feats)
        logits = nn.Dense(self.num_classes)(h)  # [B, num_classes]
        return feats, logits

