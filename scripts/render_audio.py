"""Render every curriculum audio step that has a `script` into OGG/Opus.

Usage: python scripts/render_audio.py CONTENT_DIR [--force]

CONTENT_DIR may be one curriculum folder (content/guy-talk/es-PE) or any folder above it
(content/): every `day-NN.yaml` below it is read. For each audio step with a `script`,
espeak-ng speaks the script to WAV and opusenc (or ffmpeg, if opusenc is missing) encodes it
to mono Opus in Ogg at the step's `file` path.

Rendering is idempotent: each curriculum folder keeps `audio/.hashes.json`, mapping each
output file to a hash of its script and the render settings. A file is re-rendered only when
it is missing or its hash changed, so `make audio` is cheap to run again and the committed
.ogg files do not churn.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

# Latin American Spanish is the closest espeak-ng voice to Peruvian Spanish; plain `es` is
# Castilian (it lisps "c"/"z"), which would sound foreign to our listeners.
VOICES = ("es-419", "es")
# espeak-ng's -s is words per minute; 150 is a calm, easy pace for a voice note.
WORDS_PER_MINUTE = 150
# Speech-tuned Opus at 24 kbit/s is clear for a synthetic voice and keeps files tiny, which
# matters for men on prepaid data plans.
BITRATE_KBPS = 24
# Part of every hash: changing how we render must re-render, not just changing the text.
RENDER_SETTINGS = f"espeak-ng|{WORDS_PER_MINUTE}wpm|opus|{BITRATE_KBPS}k|mono|48k|v1"
HASHES_NAME = ".hashes.json"


@dataclass(frozen=True)
class AudioJob:
    """One audio step to render: where it goes and what it says."""

    curriculum: Path
    file: str
    script: str

    @property
    def output(self) -> Path:
        return self.curriculum / self.file

    @property
    def digest(self) -> str:
        payload = f"{RENDER_SETTINGS}\n{clean_script(self.script)}".encode()
        return hashlib.sha256(payload).hexdigest()


def clean_script(script: str) -> str:
    """Turn the YAML script into what the synthesiser should read.

    Line breaks inside a paragraph are joined so espeak-ng does not pause mid-sentence;
    WhatsApp-style *bold* markers are dropped because espeak-ng would read them aloud.
    """
    paragraphs = [" ".join(p.split()) for p in script.replace("*", "").split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def find_jobs(root: Path) -> list[AudioJob]:
    jobs: list[AudioJob] = []
    for day_file in sorted(root.rglob("day-*.yaml")):
        data = yaml.safe_load(day_file.read_text(encoding="utf-8")) or {}
        for step in data.get("steps") or []:
            if step.get("type") == "audio" and step.get("script") and step.get("file"):
                jobs.append(AudioJob(day_file.parent, str(step["file"]), str(step["script"])))
    return jobs


def pick_voice() -> str:
    """Return the first available preferred voice (es-419 is missing on some old builds)."""
    listing = subprocess.run(
        ["espeak-ng", "--voices=es"], capture_output=True, text=True, check=True
    ).stdout
    names = {line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1}
    for voice in VOICES:
        if voice in names:
            return voice
    return VOICES[-1]


def encode(wav: Path, out: Path, serial: int) -> None:
    """Encode a WAV to mono Opus in Ogg, preferring opusenc (what `make audio` installs)."""
    if shutil.which("opusenc"):
        # A fixed serial (derived from the script hash) makes the output byte-for-byte
        # reproducible; opusenc otherwise picks a random one on every run.
        cmd = [
            "opusenc", "--quiet", "--speech", "--bitrate", str(BITRATE_KBPS),
            "--downmix-mono", "--serial", str(serial), str(wav), str(out),
        ]  # fmt: skip
    elif shutil.which("ffmpeg"):
        cmd = [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav),
            "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", f"{BITRATE_KBPS}k",
            "-application", "voip", "-fflags", "+bitexact", "-flags:a", "+bitexact",
            "-serial_offset", str(serial), str(out),
        ]  # fmt: skip
    else:
        raise SystemExit("Neither opusenc nor ffmpeg found: apt-get install -y opus-tools")
    subprocess.run(cmd, check=True)


def render(job: AudioJob, voice: str) -> None:
    job.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        text_file = Path(tmp) / "script.txt"
        text_file.write_text(clean_script(job.script), encoding="utf-8")
        # Reading from a file (-f) avoids any shell or argument-length issues with long text.
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(wav),
             "-f", str(text_file)],
            check=True,
        )  # fmt: skip
        # Write beside the target, then rename, so an interrupted run never leaves a
        # half-written .ogg that a later run would mistake for a finished one.
        partial = job.output.with_suffix(job.output.suffix + ".part")
        encode(wav, partial, serial=int(job.digest[:8], 16) & 0x7FFFFFFF)
        partial.replace(job.output)


def load_hashes(path: Path) -> dict[str, str]:
    if path.exists():
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            return {str(k): str(v) for k, v in loaded.items()}
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content_dir", type=Path)
    parser.add_argument("--force", action="store_true", help="re-render even if up to date")
    args = parser.parse_args(argv)

    jobs = find_jobs(args.content_dir)
    if not jobs:
        print(f"No audio steps with a script under {args.content_dir}")
        return 0
    if not shutil.which("espeak-ng"):
        raise SystemExit("espeak-ng not found: apt-get install -y espeak-ng opus-tools")

    voice = pick_voice()
    rendered = skipped = 0
    by_curriculum: dict[Path, list[AudioJob]] = {}
    for job in jobs:
        by_curriculum.setdefault(job.curriculum, []).append(job)

    for curriculum, group in by_curriculum.items():
        hashes_path = curriculum / "audio" / HASHES_NAME
        hashes = load_hashes(hashes_path)
        for job in group:
            if not args.force and job.output.exists() and hashes.get(job.file) == job.digest:
                skipped += 1
                continue
            print(f"render {job.output}")
            render(job, voice)
            hashes[job.file] = job.digest
            rendered += 1
        # Forget files no step refers to any more, so the sidecar stays truthful.
        wanted = {job.file for job in group}
        hashes = {k: v for k, v in sorted(hashes.items()) if k in wanted}
        hashes_path.parent.mkdir(parents=True, exist_ok=True)
        hashes_path.write_text(json.dumps(hashes, indent=2) + "\n", encoding="utf-8")

    print(f"audio: {rendered} rendered, {skipped} up to date (voice {voice})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
