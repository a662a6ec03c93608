"""The options that say what to run, as a table: the command line makes its Click options from
it, and `change` reads from it what a given option asks.

Each row is one option: its flags, its parameter, what it takes, where its value goes (the
saved configuration, the secrets, or an install to adopt) and its help. `--help` loads this
module, `choices` and Click only: nothing here imports more.
"""

from .choices import BACKEND_CHOICES, FLAG_PROFILES

ENV = "COMPOSE_TUNNEL_"  # every option can also come from COMPOSE_TUNNEL_<FLAG>
ASK = "\0ask"  # --password given without a value: prompt for it

# What an option takes. SWITCH: --x/--no-x (None when neither is given); FLAG: --x alone (None
# when not given); TEXT, INT, FLOAT: a value; ASK: a value, or none to be asked for it; PATH,
# DIR, FILE: a path (a directory, a file); CHOICE: one of `choices`.
SWITCH, FLAG, TEXT, INT, FLOAT, ASK_TEXT, PATH, DIR, FILE, CHOICE = (
    "switch", "flag", "text", "int", "float", "ask", "path", "dir", "file", "choice")
# Where a given value goes: a change of the saved configuration, a secret (secrets.toml, never
# a saved setting), or the upstream install whose settings and credentials are taken over.
CONFIG, SECRET, ADOPT = "config", "secret", "adopt"


class Option:
    """One option of the table (a plain class: `--help` imports no dataclasses)."""

    __slots__ = ("flags", "name", "kind", "metavar", "help", "role", "multiple", "choices", "profile",
                 "envvars")

    def __init__(self, flags: str, help: str, *, name: str | None = None, kind: str = TEXT,
                 metavar: str | None = None, role: str = CONFIG, multiple: bool = False,
                 choices: tuple[str, ...] = (), profile: str | None = None,
                 envvars: tuple[str, ...] = ()) -> None:
        self.flags = flags  # as Click takes them: "--cpu/--no-cpu", "-p --project-name"
        self.help = help
        self.name = name or self.flag[2:].replace("-", "_")  # the parameter
        self.kind = kind
        self.metavar = metavar
        self.role = role
        self.multiple = multiple
        self.choices = choices
        self.profile = profile  # the profile a SWITCH turns on or off
        # Its own variable, from the long flag (--llm-url: COMPOSE_TUNNEL_LLM_URL; --livekit/
        # --no-livekit: COMPOSE_TUNNEL_LIVEKIT=1 or 0), then any other it also reads.
        self.envvars = (ENV + self.flag[2:].replace("-", "_").upper(), *envvars)

    @property
    def flag(self) -> str:
        """The long flag that turns it on, as messages name the option."""
        return max(self.flags.split("/")[0].split(), key=len)


PROFILE_HELP = {
    "cpu": "Models in-process on the CPU (the default when no mode is given).",
    "gpu": "Models on an NVIDIA GPU (needs --gpu-image or --reflector-source).",
    "livekit": "LiveKit server and egress for live rooms.",
    "garage": "Garage local S3 storage, bootstrapped on up.",
    "caddy": "Caddy as the TLS front on :443 (implied by --ip, --domain, tunnels).",
    "ollama-cpu": "Local LLM for summaries and topics: Ollama on the CPU.",
    "ollama-gpu": "Local LLM for summaries and topics: Ollama on an NVIDIA GPU.",
}
assert tuple(PROFILE_HELP) == FLAG_PROFILES

# The options of `up` and `generate`, in the order --help lists them.
CONFIG_OPTIONS = (
    *(Option(f"--{profile}/--no-{profile}", help, kind=SWITCH, profile=profile)
      for profile, help in PROFILE_HELP.items()),
    Option("--hosted", "Models on a remote GPU service at URL (excludes --cpu and --gpu).",
           name="hosted_url", metavar="URL"),
    *(Option(f"--{backend}", f"Override the {backend} backend of the chosen mode ({', '.join(choices)}).",
             kind=CHOICE, choices=choices)
      for backend, choices in BACKEND_CHOICES.items()),
    Option("--gpu-image", "Image of the GPU service for --gpu (Reflector publishes none).", metavar="IMAGE"),
    Option("--reflector-source", "A Reflector clone: --gpu builds its GPU service from DIR/gpu/self_hosted.",
           kind=PATH, metavar="DIR"),
    Option("--llm-url", "An external OpenAI-compatible LLM API, e.g. https://api.openai.com/v1.", metavar="URL"),
    Option("--llm-model", "The LLM's model (Ollama default: qwen2.5:14b, pulled on up).", metavar="NAME"),
    Option("--admin-email", "The login of password auth (default admin@localhost).", metavar="EMAIL"),
    Option("--lan-ip", "This machine's LAN address for browser-microphone live audio (default: detected).",
           metavar="IP"),
    Option("--ip", "Public IP of this server (HTTPS with a self-signed certificate).", metavar="IP"),
    Option("--domain", "Public domain name (HTTPS with a real certificate).", metavar="NAME"),
    Option("--tunnels", "Both tunnel addresses, e.g. my-tunnel.example.com:9055,udp-host.example.com:14139.",
           metavar="TCP,UDP"),
    Option("--tunnel-tcp", "TCP tunnel address (forwarded to local port 443).", metavar="HOST:PORT"),
    Option("--tunnel-udp", "UDP tunnel address (LiveKit media).", metavar="HOST:PORT"),
    Option("--tunnel-udp-local", "Local port the UDP tunnel agent forwards to, when it differs from the "
           "public port.", kind=INT, metavar="PORT"),
    Option("--node-ip", "IPv4 address LiveKit advertises, instead of resolving the UDP tunnel host.",
           metavar="IP"),
    Option("--dns-server", "Resolver for the UDP tunnel host (e.g. 1.1.1.1) instead of the system's.",
           metavar="HOST[:PORT]"),
    Option("--dns-timeout", "Give up resolving the UDP tunnel host after this long (default 5).",
           kind=FLOAT, metavar="SECONDS"),
    Option("--publish-ip", "Host address for Caddy's 80/443 and LiveKit's UDP port (default all; "
           "127.0.0.1 when the tunnel agent runs on this host).", metavar="IP"),
    Option("--profile", "Turn on any profile by name (repeatable).", name="profile_names", metavar="NAME",
           multiple=True),
    Option("--no-profile", "Turn off a saved profile by name (repeatable).", name="profiles_off",
           metavar="NAME", multiple=True),
    Option("--profiles-dir", "A directory of your own overlays and profiles.toml (repeatable; the env "
           "variable takes a ':'-separated list).", name="profiles_dirs", kind=PATH, metavar="DIR",
           multiple=True),
    Option("--scale", "Run N copies of a service, e.g. --scale worker=3 (repeatable; saved; on a swarm: "
           "its replicas).", metavar="SERVICE=N", multiple=True),
    Option("--swarm/--no-swarm", "Deploy on the Docker Swarm this engine manages (docker stack deploy), "
           "edge services pinned to the node labelled compose-tunnel.edge; --no-swarm: back to docker "
           "compose.", kind=SWITCH),
    Option("-p --project-name", "Compose project name (default reflector; also COMPOSE_PROJECT_NAME).",
           metavar="NAME", envvars=("COMPOSE_PROJECT_NAME",)),
    # Secrets: kept in secrets.toml (0600), never in the saved configuration or any output.
    Option("--password", "Password auth (login --admin-email); alone, asks for the password without echo.",
           kind=ASK_TEXT, metavar="[PASS]", role=SECRET),
    Option("--no-password", "Back to public mode (no login); the stored password hash is kept.", kind=FLAG),
    Option("--password-file", "Password auth, the password read from FILE.", kind=FILE, metavar="FILE",
           role=SECRET),
    Option("--hosted-api-key", "API key of the --hosted GPU service.", metavar="KEY", role=SECRET),
    Option("--hf-token", "HuggingFace token for pyannote's gated models (diarization).", metavar="TOKEN",
           role=SECRET),
    Option("--llm-api-key", "API key of --llm-url.", metavar="KEY", role=SECRET),
    Option("--adopt", "Take over an install made by Reflector's setup-selfhosted.sh in the clone DIR: its "
           "project, database password, keys and token (so its data keeps working).", kind=DIR,
           metavar="DIR", role=ADOPT),
    Option("--reset", "Start from the defaults instead of the saved configuration (secrets are kept).",
           kind=FLAG),
)
OPTIONS = {option.name: option for option in CONFIG_OPTIONS}
# The options whose value, given, changes the saved configuration (the rest: secrets, --adopt).
CONFIG_PARAMS = tuple(option.name for option in CONFIG_OPTIONS if option.role == CONFIG)
