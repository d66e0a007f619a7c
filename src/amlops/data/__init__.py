"""Data: the declared schema format, file reading, validation, the synthetic demand generator.

Keep this package's `__init__` free of imports: the trained model pickles `amlops.data.features` by value,
and the CLI imports submodules lazily.
"""
