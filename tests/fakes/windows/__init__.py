"""Stateful fakes of the Windows tools decl drives: wsl.exe and PowerShell's Hyper-V cmdlets.

The scripts in tests/fakes/bin (wsl.exe, powershell.exe, pwsh) call into this package.
Their state lives in the JSON file named by DECL_FAKE_WINDOWS_STATE; see state.py.
"""
