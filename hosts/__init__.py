"""Hosts and how to reach them: shells, samplers, samples, the parsers of host output.

No Textual and no checks here: this layer runs headless and under the tests on its own.
"""
