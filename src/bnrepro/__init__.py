"""bnrepro: reproducible batch-normalisation experiments (Ioffe & Szegedy 2015; Santurkar et al. 2018)."""

__version__ = "0.1.0"


import errno
import logging

# The commands' exit codes (docs/usage.md): 0 done (or skipped: already done); 2 refused before anything was written
# (a bad value, missing or damaged data, a busy run folder, a damaged checkpoint); 3 an output that cannot be written
# (a full disk, a read-only folder); 130 stopped by a signal (the same command resumes).
EXIT_REFUSED, EXIT_UNWRITABLE, EXIT_INTERRUPTED = 2, 3, 130
# The errors of an output that cannot be written: out of space or quota, a read-only file system, no permission.
UNWRITABLE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def unwritable(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in UNWRITABLE


class BnreproError(Exception):
    """An error the user can fix (bad config, missing or corrupt data): reported without a traceback."""


class ConfigError(BnreproError, ValueError):
    pass


class DataError(BnreproError):
    pass


class ResultsError(BnreproError):
    """A stored result (metrics.parquet, runs.csv, run.json) that cannot be read: the message names the file and
    how to make it again."""


class BelowWarning(logging.Filter):
    """Lets through what is not a warning or an error: the commands print progress on stdout and every warning
    and error on stderr (configs/train.yaml, hydra.job_logging)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING
