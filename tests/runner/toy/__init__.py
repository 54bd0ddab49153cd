"""A toy study registered by tests only: ``sciprune toy`` and ``sciprune toygroup fit|hello``."""
