"""The app's functions, one Blueprint per file; each is a few lines over ``shared``."""
