"""The producers' HTTP front door: signed CloudEvents webhooks onto ``merch.events``."""
