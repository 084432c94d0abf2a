"""Speed and accuracy of the emulator's Whisper engine on the committed fixture sentences.

Loads the model (timed on its own), runs one untimed warm-up transcription, then transcribes
every ``tests/fixtures/speech/sentence-*.wav`` and prints the total audio seconds, the total
processing seconds, the real-time factor (processing / audio; the goal is <= 0.2 on two
cores) and the word error rate against ``sentences.json``. ``--long`` adds the 70 s OPUS file
(concatenated sentences), whose RTF shows the cost without Whisper's 30 s window padding.

    .venv/bin/python bench/asr_rtf.py [--beam-size N] [--threads N] [--vad] [--long] [-v]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "speech"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from local.emulator.asr.audio import decode_audio
    from local.emulator.asr.engines import DEFAULT_BEAM_SIZE, WhisperEngine
    from local.emulator.asr.wer import word_error_rate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beam-size", type=int, default=DEFAULT_BEAM_SIZE)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--vad", action="store_true", help="enable faster-whisper's VAD filter")
    parser.add_argument("--long", action="store_true", help="also time long-70s.ogg")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each transcript")
    args = parser.parse_args()

    manifest = json.loads((FIXTURES / "sentences.json").read_text(encoding="utf-8"))
    sentences: dict[str, str] = manifest["sentences"]
    audio = {name: decode_audio((FIXTURES / name).read_bytes()).channels[0] for name in sentences}

    engine = WhisperEngine(beam_size=args.beam_size, cpu_threads=args.threads, vad_filter=args.vad)
    started = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - started
    first = next(iter(audio.values()))
    engine.transcribe(first, language="en-US", word_timestamps=False)  # warm-up, untimed

    hypotheses: list[str] = []
    audio_s = processing_s = 0.0
    for name, samples in audio.items():
        started = time.perf_counter()
        segments = engine.transcribe(samples, language="en-US", word_timestamps=False)
        processing_s += time.perf_counter() - started
        audio_s += len(samples) / 16_000
        hypotheses.append(" ".join(s.text for s in segments))
        if args.verbose:
            print(f"{name}: {sentences[name]!r} -> {hypotheses[-1]!r}")
    wer = word_error_rate(list(sentences.values()), hypotheses)

    print(
        f"engine        whisper tiny.en int8, beam {args.beam_size}, {args.threads} threads, "
        f"vad {'on' if args.vad else 'off'}"
    )
    print(f"model load    {load_s:.2f} s")
    print(f"sentences     {len(sentences)}")
    print(f"audio         {audio_s:.2f} s")
    print(f"processing    {processing_s:.2f} s")
    print(f"RTF           {processing_s / audio_s:.3f}  (goal <= 0.2)")
    print(f"WER           {wer:.1%}")

    if args.long:
        samples = decode_audio((FIXTURES / "long-70s.ogg").read_bytes()).channels[0]
        started = time.perf_counter()
        engine.transcribe(samples, language="en-US", word_timestamps=False)
        elapsed = time.perf_counter() - started
        seconds = len(samples) / 16_000
        print(
            f"long file     {seconds:.1f} s audio in {elapsed:.2f} s, RTF {elapsed / seconds:.3f}"
        )


if __name__ == "__main__":
    main()
