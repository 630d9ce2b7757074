"""The strict config machinery lives in `schemas.config`, shared by the corpus and training halves;
corpus modules keep importing it from here."""

from schemas.config import ConfigError, config_from_dict, describe_config, setting

__all__ = ["ConfigError", "config_from_dict", "describe_config", "setting"]
