"""One host's Docker engine: the link, how it is dialled, and the readers of its answers."""
