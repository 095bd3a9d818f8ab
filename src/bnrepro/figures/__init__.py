"""Figures drawn only from stored metrics (results/<name>/metrics.parquet); nothing here trains."""
