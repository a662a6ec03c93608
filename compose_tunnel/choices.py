"""What the command line offers, known without loading anything: `--help` reads only this.

The profiles with a flag of their own, the values of Reflector's five model backends, and how
long `up` waits for a stack by default. The modules that act on them import them from here.
"""

# Profiles with a flag of their own (--cpu, ...): hints and replayed flags name that flag.
FLAG_PROFILES = ("cpu", "gpu", "livekit", "garage", "caddy", "ollama-cpu", "ollama-gpu")

# Reflector's five model backends and the values each takes (upstream's per-backend flags).
# The first value is the in-process one (--cpu); "modal" is a GPU service (--gpu, --hosted).
BACKEND_CHOICES = {
    "transcript": ("whisper", "modal"),
    "diarization": ("pyannote", "modal"),
    "translation": ("marian", "modal", "passthrough"),
    "padding": ("pyav", "modal"),
    "mixdown": ("pyav", "modal"),
}

DEFAULT_WAIT_SECONDS = 300.0
