"""A Speech-to-Text emulator faithful to the official REST spec, transcribing for real."""
