"""The storage domain: the storage wizard, its checks and fixes, and its settings table."""
