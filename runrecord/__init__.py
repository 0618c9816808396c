"""What a run leaves behind: run folder, metric log, checkpoints, summary, and the W&B sink."""
from runrecord.record import RunConflict, RunRecord, Selection, run_name
from runrecord.wandb_sink import WandbSink

__all__ = ["RunConflict", "RunRecord", "Selection", "WandbSink", "run_name"]
