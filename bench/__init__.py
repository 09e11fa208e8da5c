"""Benchmarks that print ratios against anchors measured in the same run (see _anchors)."""
