"""One trial's training: DeepSpeed engine, schedule, evaluation, checkpoints, reporting."""
