"""How the services reach each other on the project network: names, ports, the database user.

One place for the addresses that several rendered files and the bootstraps must agree on.
"""

from __future__ import annotations

POSTGRES = "postgres"
POSTGRES_USER = "reflector"
POSTGRES_DB = "reflector"
POSTGRES_ADDRESS = "postgres:5432"
REDIS_PORT = 6379
REDIS_ADDRESS = f"redis:{REDIS_PORT}"
LIVEKIT_ADDRESS = "livekit-server:7880"
GARAGE_S3_URL = "http://garage:3900"
SERVER_URL = "http://server:1250"
WEB_ADDRESS = "web:3000"

HATCHET = "hatchet"
HATCHET_DATABASE = "hatchet"
HATCHET_API_URL = "http://hatchet:8888"  # REST API and dashboard, inside the network
HATCHET_GRPC_ADDRESS = "hatchet:7077"
HATCHET_DASHBOARD_PORT = 8888  # published on 127.0.0.1 only (plain HTTP)

GPU_SERVICE_URL = "http://transcription:8000"  # the gpu service's network alias
OLLAMA_CPU = "ollama-cpu"
OLLAMA_GPU = "ollama"
LLM_PORT = 11435
