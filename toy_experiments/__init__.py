"""Small standalone studies that run on a CPU in seconds to minutes (``python -m
toy_experiments.<name>``)."""
