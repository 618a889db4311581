"""Stateful fakes of the Mac tools decl drives: Parallels' prlctl, UTM's utmctl and osascript.

The scripts in tests/fakes/bin (prlctl, utmctl, osascript) call into this package. Their state
lives in the JSON file named by DECL_FAKE_MAC_STATE; see state.py. The facts they reproduce,
with their public sources, are in docs/facts/parallels.md and docs/facts/utm.md.
"""
