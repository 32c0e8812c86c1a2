"""stepkit's version, in a module of its own: the package reads it for ``__version__``,
the cache key for its major version, and the build for the distribution's version."""

__version__ = "0.1.0"
