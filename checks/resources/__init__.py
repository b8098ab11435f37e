"""A host's resources: CPU, memory, swap, load, disk space and inodes, graded from its samples."""
