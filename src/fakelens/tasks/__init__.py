"""Training tasks (losses and targets over pure models) and MIL pooling strategies."""

from fakelens.tasks.classification import TASKS, AVTask, ClassificationTask, MILTask, Task, TaskConfig, build_task
from fakelens.tasks.pooling import POOLINGS, PoolingParams, pool

__all__ = ["TASKS", "POOLINGS", "Task", "TaskConfig", "ClassificationTask", "MILTask", "AVTask", "build_task",
           "PoolingParams", "pool"]
