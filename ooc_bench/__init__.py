"""ooc-bench: does synthetic data help a small biomedical image classifier, and which generator makes it best?"""

__version__ = "0.1.0"
