"""The one French catalogue: labels of the domain's codes (labels.py) and the formatters (formats.py)."""
