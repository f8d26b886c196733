"""The package version, in one place: pyproject.toml reads it (setuptools' dynamic version), and so do
``vision_grpc.__version__``, the CLI's ``--version`` and the x-goog-api-client header."""

__version__ = "0.2.0.dev0"
