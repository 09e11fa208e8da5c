"""The tables that channels own, gathered so that migrations register them all.

Each channel with tables of its own adds its models module here.
"""
