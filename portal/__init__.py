"""The web portal for offices and leadership: ranking, province pages and list downloads."""

from portal.app import PortalSettings, create_app

__all__ = ["PortalSettings", "create_app"]
