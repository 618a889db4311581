"""UTM VMs: created and configured through UTM's AppleScript dictionary (osascript), run
through utmctl (see docs/facts/utm.md)."""

from decl.providers.utm.provider import UtmProvider

__all__ = ["UtmProvider"]
