"""The app's HTTP API as plain async handlers: a Starlette request in, a response out.

The Azure Functions HTTP-stream triggers (``azurefunctions.extensions.http.fastapi``, whose
``Request`` is Starlette's) call these in a line or two; tests mount them in any Starlette
app. Request bodies are streamed, never buffered whole.

* :func:`recognize` — ``POST /api/recognize``: short-audio recognition (<= 60 s).
* :func:`transcribe` — ``POST /api/transcribe``: fast transcription of one file.
* :func:`shared.http.context.with_context` — what every HTTP function's body runs in: the
  app's context, or a JSON 503 saying why it cannot be built.
"""

from shared.http.problems import ApiProblem
from shared.http.recognize import recognize
from shared.http.transcribe import transcribe

__all__ = ["ApiProblem", "recognize", "transcribe"]
