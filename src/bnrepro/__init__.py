"""bnrepro: reproducible batch-normalisation experiments (Ioffe & Szegedy 2015; Santurkar et al. 2018)."""

__version__ = "0.1.0"


class BnreproError(Exception):
    """An error the user can fix (bad config, missing or corrupt data): reported without a traceback."""


class ConfigError(BnreproError, ValueError):
    pass


class DataError(BnreproError):
    pass


from bnrepro import paths  # noqa: E402,F401  (registers the ${data_root:} resolver the data configs use)
