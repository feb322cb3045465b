"""jaxvision.train: TrainState, pure steps, data parallelism, Orbax checkpoints, the generic loop and its log
writer; the GAN state and step are in ``jaxvision.train.gan``."""
from jaxvision.train.checkpoint import CheckpointError, CheckpointManager
from jaxvision.train.log_writer import MetricsWriter, read_metrics, read_tensorboard
from jaxvision.train.loop import NonFiniteLossError, RunOptionError, fit
from jaxvision.train.state import TrainState, jit_once, make_eval_step, make_train_step

__all__ = ["CheckpointError", "CheckpointManager", "MetricsWriter", "NonFiniteLossError", "RunOptionError",
           "TrainState", "fit", "jit_once", "make_eval_step", "make_train_step", "read_metrics", "read_tensorboard"]
