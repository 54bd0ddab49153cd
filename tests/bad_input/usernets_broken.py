"""A user's module that fails on import (a bad-input case of ``sciprune prune``)."""

raise ImportError("this module is broken on purpose")
