"""Ops data: the files ops staff edit under campaigns/ and templates/, validated with positions."""

from bot.opsdata.bundle import OpsData
from bot.opsdata.loader import OpsDataSource, load_opsdata, load_templates
from bot.opsdata.problems import OpsDataError, Problem, YamlDoc, read_yaml, validate

__all__ = [
    "OpsData",
    "OpsDataError",
    "OpsDataSource",
    "Problem",
    "YamlDoc",
    "load_opsdata",
    "load_templates",
    "read_yaml",
    "validate",
]
