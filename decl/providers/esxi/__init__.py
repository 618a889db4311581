"""VMware ESXi hosts over SSH: vim-cmd and vmkfstools in the host's BusyBox shell."""
