"""The inventory: which hosts there are and how to reach them (TOML, OpenSSH, Ansible)."""
