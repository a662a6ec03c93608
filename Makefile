# compose-tunnel: the daily interface. `make help` lists the targets.
#   make up TUNNELS=my-tunnel.example.com:9055,udp-host.example.com:14139
#   make up PROFILES=cpu,livekit,garage TUNNELS=tcp-host:9055,udp-host:14139 ARGS="--dns-server 1.1.1.1"
#   make up            (no variables: replays the saved configuration)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CT := COMPOSE_TUNNEL_VIA=make $(BIN)/compose-tunnel
WORKDIR ?=
TUNNELS ?=
PROFILES ?=
ARGS ?=
SERVICES ?=
FILE ?=
PYTEST_ARGS ?=

comma := ,
# With TUNNELS and no PROFILES, use the tunnel guide's stack: CPU transcription, LiveKit, Garage.
profiles := $(if $(PROFILES),$(PROFILES),$(if $(TUNNELS),cpu$(comma)livekit$(comma)garage))
config_flags := $(foreach p,$(subst $(comma), ,$(profiles)),--profile $(p)) \
	$(if $(TUNNELS),--tunnels $(TUNNELS))
workdir_flag := $(if $(WORKDIR),--workdir $(WORKDIR))

.PHONY: help venv docker up down rebuild upgrade status logs config generate doctor service backup restore test
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 10
	@echo "variables: TUNNELS=TCP,UDP  PROFILES=a,b,c  ARGS=\"more flags\"  WORKDIR=dir  SERVICES=\"a b\"  FILE=archive"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(STAMP) ## create the virtual environment (the other targets do it on first use)

docker: $(STAMP) ## make sure Docker Engine runs and `docker compose` (v2) works
	@bash .ci/docker-engine.sh
	@docker compose version >/dev/null 2>&1 || { \
	  dir="$${DOCKER_CONFIG:-$$HOME/.docker}/cli-plugins"; mkdir -p "$$dir"; \
	  ln -sf "$$($(BIN)/python -c 'import compose,os;print(os.path.dirname(compose.__file__))')/docker-compose" "$$dir/docker-compose"; \
	  echo "linked the Compose v2 plugin into $$dir"; }

up: docker ## start the stack (TUNNELS=, PROFILES=, ARGS=; no variables replays the saved config)
	$(CT) up $(workdir_flag) $(config_flags) $(ARGS)

generate: $(STAMP) ## render the files only (same variables as up)
	$(CT) generate $(workdir_flag) $(config_flags) $(ARGS)

down: docker ## stop and remove what up started (ARGS=--volumes also removes the data)
	$(CT) down $(workdir_flag) $(ARGS)

rebuild: docker ## rebuild images, pull newer ones, replace what changed (the app with no gap)
	$(CT) rebuild $(workdir_flag) $(ARGS)

upgrade: docker ## newer images; only what changed replaced, the app with no gap (ARGS=--dry-run)
	$(CT) upgrade $(workdir_flag) $(ARGS)

status: docker ## state and health of each service
	$(CT) status $(workdir_flag) $(ARGS)

logs: docker ## logs of the stack (SERVICES="server web", ARGS=-f to follow)
	$(CT) logs $(workdir_flag) $(ARGS) $(SERVICES)

backup: docker ## save the running install in one archive (ARGS="-o FILE --passphrase-file F")
	$(CT) backup $(workdir_flag) $(ARGS)

restore: docker ## restore an archive of backup, then start it (FILE=archive ARGS="-p NAME --force")
	$(CT) restore $(FILE) $(workdir_flag) $(ARGS)

config: $(STAMP) ## show the saved configuration (secrets masked)
	$(CT) config show $(workdir_flag) $(ARGS)

doctor: $(STAMP) ## check every link from the tunnel to the app (ARGS=--json for scripts)
	$(CT) doctor $(workdir_flag) $(ARGS)

service: $(STAMP) ## bring the stack back after a reboot: a systemd unit runs up, then watch
	$(CT) service install $(workdir_flag) $(ARGS)

test: $(STAMP) ## run the test suite (engine tests skip without a Docker Engine)
	bash tests/system-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)
