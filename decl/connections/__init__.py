"""How decl reaches a host: the local machine (subprocess) or SSH (paramiko)."""
