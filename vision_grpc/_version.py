"""The package version, in one place (read by the package and the x-goog-api-client header)."""

__version__ = "0.1.0"
