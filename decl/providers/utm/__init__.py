"""UTM VMs: created and configured through UTM's AppleScript dictionary (osascript), run
through utmctl (see docs/facts/utm.md)."""
