"""Channels: one folder per way a gift reaches someone (email, sms, printable, physical)."""
