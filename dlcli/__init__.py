"""dlcli: a YAML file in, a trained, tested and saved Keras experiment out."""

__version__ = "0.1.0"
