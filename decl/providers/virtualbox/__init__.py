"""VirtualBox VMs through VBoxManage."""
