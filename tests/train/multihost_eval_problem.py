"""The evaluation problem shared by the 2-process eval test (multihost_eval_worker.py) and its 1-process reference.

Detection: ``N_DET`` shapes test images (not a multiple of hosts x devices x batch) scored by a jittable predict
that returns per-example candidate boxes (jittered ground truth, some with a wrong class, plus false positives)
carried as batch arrays (``Dataset.with_arrays``, passed as predict ``inputs``), their scores scaled by the image's
mean brightness so that each detection's score depends on its own image. Any image dropped, duplicated or paired
with another image's inputs changes the metrics. Features: a tiny random-weight Flax CNN as the FID network on
``N_IMG`` random images per side.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments import _detection as D
from jaxvision.data import load
from jaxvision.metrics import compute_statistics, extract_features, feature_fn_from_flax, fid
from jaxvision.models.detection.common import Detections

N_DET, BATCH, IMAGE, CANDIDATES = 13, 4, 32, 6
N_IMG, FEATURE_BATCH = 37, 10


def detection_dataset(host_id=None, num_hosts=None):
    """The shapes test split with the candidates as batch arrays (this process's host slice by default)."""
    kw = dict(image_size=IMAGE, max_boxes=4, num_examples=N_DET, shuffle=False, drop_remainder=False)
    whole = load("shapes", "test", N_DET, host_id=0, num_hosts=1, **kw).batch(0)
    rng = np.random.default_rng(7)
    boxes = np.zeros((N_DET, CANDIDATES, 4), np.float32)
    scores = rng.uniform(0.1, 1.0, (N_DET, CANDIDATES)).astype(np.float32)
    classes = rng.integers(0, 6, (N_DET, CANDIDATES)).astype(np.int32)
    for i in range(N_DET):
        gt = whole["boxes"][i][whole["mask"][i]]
        labels = whole["labels"][i][whole["mask"][i]]
        k = min(len(gt), CANDIDATES - 2)
        boxes[i, :k] = gt[:k] + rng.normal(0, 0.6, (k, 4))
        classes[i, :k] = np.where(rng.uniform(size=k) < 0.8, labels[:k], classes[i, :k])
        xy = rng.uniform(0, IMAGE - 8, (CANDIDATES - k, 2))
        boxes[i, k:] = np.concatenate([xy, xy + rng.uniform(4, 8, (CANDIDATES - k, 2))], -1)
    ds = load("shapes", "test", BATCH, host_id=host_id, num_hosts=num_hosts, **kw)
    return ds.with_arrays({"cand_boxes": boxes, "cand_scores": scores, "cand_classes": classes})


def candidate_predict(variables, images, cand_boxes, cand_scores, cand_classes):
    """Detections of the candidates, scores times ``variables['scale']`` times (0.5 + the image's mean)."""
    brightness = images.mean(axis=(1, 2, 3))
    s = cand_scores * variables["scale"] * (0.5 + brightness[:, None])
    order = jnp.argsort(-s, axis=1)
    take = lambda x: jnp.take_along_axis(x, order if x.ndim == 2 else order[..., None], axis=1)  # noqa: E731
    return Detections(take(cand_boxes), take(s), take(cand_classes),
                      jnp.full(images.shape[:1], CANDIDATES, jnp.int32))


class TinyCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Conv(8, (3, 3))(x))
        h = nn.Dense(16)(h.mean(axis=(1, 2)))
        return {"features": h, "logits": nn.Dense(5)(nn.relu(h))}


def feature_network():
    model = TinyCNN()
    variables = model.init(jax.random.PRNGKey(3), jnp.zeros((1, 8, 8, 3)))
    return feature_fn_from_flax(model.apply, variables, name="tiny cnn")


def image_sets():
    rng = np.random.default_rng(11)
    a = rng.uniform(size=(N_IMG, 8, 8, 3)).astype(np.float32)
    b = np.clip(a * 0.5 + 0.4 * rng.uniform(size=a.shape), 0, 1).astype(np.float32)
    return a, b


def evaluate_all(host_id=None, num_hosts=None) -> dict:
    """Every eval output of this process as numpy arrays (metrics as 0-d arrays)."""
    res = D.run_predict(candidate_predict, {"scale": jnp.float32(0.9)}, detection_dataset(host_id, num_hosts),
                        inputs=("cand_boxes", "cand_scores", "cand_classes"), keep_images=6)
    out = {f"det_{k}": v for k, v in res.items()}
    out.update({f"metric_{k}": np.asarray(v) for k, v in D.detection_metrics(res, 6).items()})
    net = feature_network()
    a, b = image_sets()
    feats = extract_features(a, net, FEATURE_BATCH)
    mu, sigma, count = compute_statistics(a, net, FEATURE_BATCH)
    out.update(features=feats["features"], logits=feats["logits"], mu=mu, sigma=sigma, count=np.asarray(count),
               fid=np.asarray(float(fid(a, b, network=net, batch_size=FEATURE_BATCH))))
    return out
