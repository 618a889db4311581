"""Stateful fakes of the desktop hypervisors' CLIs (VBoxManage, vmrun, vmware-vdiskmanager).

The facts they reproduce, with their public sources, are in docs/facts/virtualbox.md and
docs/facts/vmware.md.
"""
