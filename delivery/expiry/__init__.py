"""Card expiry on the delivery side: the beat job that expires due cards and reminds
recipients before their cards expire, and what the messages disclose."""
