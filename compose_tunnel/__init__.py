"""compose-tunnel: self-host the Reflector stack behind NAT through tunnels."""

__version__ = "0.1.0"
