"""The package's version, in one place: pyproject.toml reads it (``[tool.setuptools.dynamic]``) and
``qfex_oms.__version__`` and ``qfex-oms --version`` show it."""

__version__ = "0.1.0"
