"""Plain-Python core of the transcription app: everything the functions call."""
