"""VMware Workstation and Fusion VMs through vmrun, vmware-vdiskmanager and the .vmx file."""
