"""Ogg Opus streams measured page by page, without keeping more than a page header.

An Ogg stream is a sequence of pages: a 27-byte header (``OggS``, version, flags, a 64-bit
granule position, serial number, sequence, CRC, segment count), a segment table, and the
body. The first page of an Opus stream holds the ``OpusHead`` packet (RFC 7845 section 5.1):
version, channel count, pre-skip, input sample rate. Opus granule positions count 48 kHz
samples whatever the input rate (RFC 7845 section 4), so a page's end time is
``(granule - pre_skip) / 48000`` seconds. Page CRCs are not verified: the service decodes the
audio and refuses a damaged stream itself.
"""

from __future__ import annotations

from shared.audio_duration import OGG_BOS, OGG_PAGE_HEADER, parse_ogg_page, parse_opus_head
from shared.audio_duration import OPUS_GRANULE_RATE as OPUS_GRANULE_RATE
from shared.http.audio_rules import CHANNELS, SAMPLE_RATE, audio_too_long, invalid_audio

#: Opus encoders write 0 when the input rate was unknown (RFC 7845: "not to be used").
_UNKNOWN_INPUT_RATE = 0


class OggOpusMeter:
    """Checks a short-audio Ogg Opus upload: ``OpusHead`` first, then at most ``max_seconds``."""

    def __init__(self, max_seconds: float) -> None:
        self._max_seconds = max_seconds
        self._header = bytearray()  # the page header being read
        self._body_left = 0  # body bytes of the current page still to come
        self._first_body: bytearray | None = None  # collected body of page 0
        self._pages = 0
        self._serial: int | None = None
        self._pre_skip = 0
        self._ready = False
        #: Input sample rate from ``OpusHead``, once read (0 = not stated by the encoder).
        self.input_rate: int | None = None
        #: End time of the last complete page seen, in seconds.
        self.seconds = 0.0

    @property
    def ready(self) -> bool:
        """True once ``OpusHead`` has been read and accepted."""
        return self._ready

    def feed(self, chunk: bytes) -> None:
        """Account for ``chunk``; raise ApiProblem (400 format, 413 duration)."""
        view = memoryview(chunk)
        while view:
            if self._body_left:
                taken = min(self._body_left, len(view))
                if self._first_body is not None:
                    self._first_body += view[:taken]
                self._body_left -= taken
                view = view[taken:]
                if not self._body_left and self._first_body is not None:
                    self._read_opus_head(bytes(self._first_body))
                    self._first_body = None
                continue
            view = self._read_page_header(view)

    def _read_page_header(self, view: memoryview) -> memoryview:
        """Consume page-header bytes from ``view``; return what is left of it."""
        needed = OGG_PAGE_HEADER
        if len(self._header) >= OGG_PAGE_HEADER:
            needed += self._header[26]
        taken = min(needed - len(self._header), len(view))
        self._header += view[:taken]
        view = view[taken:]
        if len(self._header) >= 4 and self._header[:4] != b"OggS":
            if self._pages == 0:
                raise invalid_audio("The body is not an Ogg stream: it does not start with 'OggS'.")
            raise invalid_audio(f"The Ogg stream is damaged: page {self._pages} has no 'OggS'.")
        if (
            len(self._header) < OGG_PAGE_HEADER
            or len(self._header) < OGG_PAGE_HEADER + self._header[26]
        ):
            return view
        header = bytes(self._header)
        self._header = bytearray()
        page = parse_ogg_page(header)
        assert page is not None  # "OggS" and the whole segment table were checked above
        flags, granule, serial = page.flags, page.granule, page.serial
        self._body_left = page.body_size
        if self._pages == 0:
            if not flags & OGG_BOS:
                raise invalid_audio("The Ogg stream does not begin with a first (BOS) page.")
            self._serial = serial
            self._first_body = bytearray()
            if not self._body_left:
                self._read_opus_head(b"")
        elif serial == self._serial and granule >= 0:
            # Granule -1 marks a page on which no packet ends; other serials are other streams.
            self.seconds = max(self.seconds, (granule - self._pre_skip) / OPUS_GRANULE_RATE)
            if self.seconds > self._max_seconds:
                raise audio_too_long(self._max_seconds)
        self._pages += 1
        return view

    def _read_opus_head(self, packet: bytes) -> None:
        head = parse_opus_head(packet)
        if head is None:
            codec = "Vorbis" if packet.startswith(b"\x01vorbis") else "not Opus"
            raise invalid_audio(
                f"The Ogg stream must carry Opus audio; its first packet is {codec}."
            )
        version, channels, rate = head.version, head.channels, head.input_rate
        self._pre_skip = head.pre_skip
        if version >> 4:
            raise invalid_audio(f"OpusHead version {version} is not supported (major version 0).")
        problems = []
        if channels != CHANNELS:
            problems.append(f"{channels} channels; it must be mono (1 channel)")
        if rate not in (SAMPLE_RATE, _UNKNOWN_INPUT_RATE):
            problems.append(f"an input rate of {rate} Hz; it must be {SAMPLE_RATE} Hz")
        if problems:
            raise invalid_audio(
                "The Ogg Opus audio must be mono at 16000 Hz; this stream has "
                + "; ".join(problems)
                + "."
            )
        self.input_rate = rate
        self._ready = True

    def finish(self) -> None:
        """Raise 400 if the body ended before ``OpusHead`` was read."""
        if not self._ready:
            raise invalid_audio("The Ogg stream ends before its OpusHead header is complete.")
