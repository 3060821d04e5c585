"""braincl-bench: class-incremental learning at equal memory bytes.

Importing this package is cheap on purpose: the CLI's ``--help`` and config validation must not
pull in torch or compressai. Heavy modules are imported where they are used.
"""

__version__ = "0.1.0"
