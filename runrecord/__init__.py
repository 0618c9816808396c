"""What a run leaves behind: run folder, metric log, checkpoints, summary, and the W&B sink."""

from runrecord.files import RunFolderError
from runrecord.record import (
    RunConflict,
    RunRecord,
    Selection,
    command_line,
    run_name,
    selections_for,
)
from runrecord.wandb_sink import WandbSink

__all__ = [
    "RunConflict",
    "RunFolderError",
    "RunRecord",
    "Selection",
    "WandbSink",
    "command_line",
    "run_name",
    "selections_for",
]
