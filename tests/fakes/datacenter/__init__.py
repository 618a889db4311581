"""Stateful fakes of the datacenter hypervisors' tools: ESXi's vim-cmd, vmkfstools and
vmware, and Xen's xl. The executables live in tests/fakes/bin/."""
