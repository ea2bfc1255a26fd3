"""Accounts, two-factor authentication and habilitations."""
