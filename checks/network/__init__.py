"""The network domain: the network wizard, its parsers, the probe and the firewall's packet walk."""
