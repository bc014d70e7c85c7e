"""envctl: whole AWS environments from declarative YAML."""
__version__ = "0.1.0"
