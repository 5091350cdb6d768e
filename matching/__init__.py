"""The matching engine: pure functions from a registry and a population table to one result per
registry row (design.md). Machinery lives in the submodules; this is the whole public face."""

from matching.engine import LinkResult, link, reconcile, resolve
from matching.population import Population
from matching.settings import Settings

__all__ = ["LinkResult", "Population", "Settings", "link", "reconcile", "resolve"]
