"""Synthetic detection batches and a few-step trainer shared by the detector tests (not a test module)."""
import jax
import numpy as np
import optax

from jaxvision.models.detection.common import make_loss_fn


def synthetic_batch(batch=2, size=32, max_boxes=3, num_valid=(2, 1), num_classes=3, landmarks=4, seed=0):
    """A fixed-shape batch in the ``shapes`` format: bright rectangles whose class is their colour channel."""
    rng = np.random.RandomState(seed)
    image = np.zeros((batch, size, size, 3), np.float32)
    boxes = np.zeros((batch, max_boxes, 4), np.float32)
    labels = -np.ones((batch, max_boxes), np.int32)
    mask = np.zeros((batch, max_boxes), bool)
    lms = np.zeros((batch, max_boxes, landmarks, 2), np.float32)
    for i in range(batch):
        for j in range(num_valid[i % len(num_valid)]):
            w, h = rng.uniform(size * 0.2, size * 0.5, 2)
            x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
            boxes[i, j] = (x0, y0, x0 + w, y0 + h)
            labels[i, j] = rng.randint(num_classes)
            mask[i, j] = True
            image[i, int(y0):int(y0 + h), int(x0):int(x0 + w), labels[i, j] % 3] = 1.0
            lms[i, j] = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)][:landmarks]
    return {"image": image, "boxes": boxes, "labels": labels, "mask": mask, "landmarks": lms,
            "landmarks_mask": np.broadcast_to(mask[..., None], mask.shape + (landmarks,)).copy()}


def train_steps(model, head_loss, batch, steps=5, lr=1e-3):
    """Adam on one batch; returns (losses, final variables, all gradients finite)."""
    variables = model.init(jax.random.PRNGKey(0), batch["image"])
    loss = make_loss_fn(model, head_loss)
    tx = optax.adam(lr)
    params, stats = variables["params"], variables.get("batch_stats")
    opt = tx.init(params)

    @jax.jit
    def step(params, stats, opt):
        (value, (stats, _)), grads = jax.value_and_grad(loss, has_aux=True)(params, stats, batch,
                                                                            jax.random.PRNGKey(1))
        finite = jax.tree.reduce(lambda a, g: a & jax.numpy.all(jax.numpy.isfinite(g)), grads, True)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), stats, opt, value, finite

    losses, ok = [], True
    for _ in range(steps):
        params, stats, opt, value, finite = step(params, stats, opt)
        losses.append(float(value))
        ok &= bool(finite)
    out = {"params": params}
    if stats is not None:
        out["batch_stats"] = stats
    return losses, out, ok
