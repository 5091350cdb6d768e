"""The synthetic nation generator: a Vietnam-like population, VSS registry and ground truth."""

from popsync.synthetic.nation import Nation, generate_nation, write_nation
from popsync.synthetic.profiles import ERROR_PROFILES, ERROR_TAGS

__all__ = ["ERROR_PROFILES", "ERROR_TAGS", "Nation", "generate_nation", "write_nation"]
