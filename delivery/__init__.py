"""Orders, scheduling and delivery of gift cards over email, SMS, printable PDF and post."""
