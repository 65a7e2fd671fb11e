# The two commands of the README: `make book` and `make test`. Everything else is a step of them,
# or a check of its own (`make help` lists them all). A bare `make` only prints that list.
.DEFAULT_GOAL := help
PYTHON    ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
# the pins; `make test-min` installs constraints-min.txt's
CONSTRAINTS := constraints.txt
# where torch and torchvision come from: PyPI when empty (its Linux wheels bring the CUDA
# libraries, about 6 GB); the workflows take the CPU wheels from PyTorch's own index
# (TORCH_INDEX=https://download.pytorch.org/whl/cpu): the pins match their +cpu versions
TORCH_INDEX ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# full (the chapter's own numbers) or quick (a few minutes); notebooks read it through idlmam.budget
IDL_BUDGET ?= full
export IDL_DATA ?= $(CURDIR)/data
# no progress bars in pages or logs
export TQDM_DISABLE := 1
export PYTHONHASHSEED := 0

.PHONY: help book test test-min test-colab release-check lint unit notebooks data venv \
        system-deps sync clean site-check colab dashboard faults

help: ## this list
	@echo "make TARGET, where TARGET is one of (the README says what each costs):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -e 's/:.*## /\t/' | expand -t 16 | sed 's/^/  /'

venv: $(STAMP) ## the pinned stack in .venv (about 6 GB from PyPI)
$(STAMP): pyproject.toml constraints.txt $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch torchvision
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[all]'
	touch $@

# Debian packages the tests use (only as root with apt-get): a PostgreSQL server for the tuning
# tests, Chromium for the browser test of the built site (tests/test_site.py)
system-deps: ## PostgreSQL and Chromium from Debian (as root), for the tuning and site tests
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing postgresql (Debian) for the tuning tests"; \
	    apt-get install -y -q postgresql >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null); \
	  else echo "postgresql not installed and apt-get unavailable: its tests will be skipped"; fi; fi
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (Debian) for the site test"; \
	    apt-get install -y -q chromium >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null) \
	      || echo "chromium could not be installed: the site test will be skipped"; \
	  else echo "chromium not installed and apt-get unavailable: the site test will be skipped"; fi; fi

data: $(STAMP) ## Fashion-MNIST into data/
	$(BIN)/python -m idlmam.data

unit: $(STAMP) data system-deps ## the unit tests and the quick site in a browser
	$(BIN)/python -m pytest tests -q

# faults injected into real workers, servers and files (tests/faults, part of `make unit` too)
faults: $(STAMP) data system-deps ## the fault suite alone: restarts, kills, torn files, full disks
	$(BIN)/python -m pytest tests/faults -q

NOTEBOOKS := $(wildcard book/*.ipynb book/exercises/*.ipynb)
notebooks: $(STAMP) data ## every notebook under nbval, quick budget, CPU
	IDL_BUDGET=quick IDL_DEVICE=cpu $(BIN)/python -m pytest -q -p no:cacheprovider --nbval $(NOTEBOOKS)

# the formatter and the linter, configured in pyproject.toml ([tool.ruff]); `ruff format .` fixes.
# Then the GitHub workflows, offline: their schema, and zizmor's security audit
lint: $(STAMP) ## ruff, and the workflows offline (schema, zizmor)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor --offline .github

test: lint unit notebooks ## the README's test command: lint, unit, notebooks

# the unit tests on the oldest releases pyproject.toml allows (constraints-min.txt, torch and
# torchvision included), in .venv-min
test-min: ## the unit tests on the oldest allowed releases, in .venv-min
	$(MAKE) unit VENV=.venv-min CONSTRAINTS=constraints-min.txt

# Colab's own stack (constraints-colab.txt, from Colab's published package list; rewrite it with
# tools/colab_stack.py constraints): .venv-colab with those versions, the wheel built now, the
# Colab notebooks of a quick build, each run as Colab runs it (tools/colab_stack.py says how).
# COLAB_PYTHON: the interpreter of .venv-colab (Colab runs Python 3.13).
COLAB_PYTHON ?= $(PYTHON)
test-colab: $(STAMP) data ## the Colab notebooks on Colab's versions, installed as Colab does
	$(BIN)/pip install -q -c constraints.txt build
	TORCH_INDEX=$(TORCH_INDEX) $(BIN)/python tools/colab_stack.py test --python $(COLAB_PYTHON)

# What the release workflow checks before it publishes (tools/release.py): the version agrees
# everywhere, idlmam/ changes are in the changelog, the sdist and the wheel build and pass
# twine check, the wheel installs outside the repository and runs a page on the quick budget.
release-check: $(STAMP) data ## the release workflow's checks: versions, dists, the wheel run outside
	$(BIN)/pip install -q -c constraints.txt build twine
	$(BIN)/python tools/release.py check
	$(BIN)/python tools/release.py unreleased
	$(BIN)/python tools/release.py dist --out dist
	TORCH_INDEX=$(TORCH_INDEX) $(BIN)/python tools/release.py smoke dist/idlmam-$(VERSION)-py3-none-any.whl

# Incremental: jupyter-cache (_build/.jupyter_cache) re-executes a page only when its code cells
# changed. It cannot see the package, the budget or the pins, so those make BOOK_KEY: when the key
# differs from the last build's, the cache and Sphinx's environment are dropped and every page runs.
# tools/execute_pages.py fills that cache first, BOOK_JOBS pages at a time (one CPU thread each);
# jupyter-book then only renders.
BOOK_JOBS ?= 2
BOOK_KEY = $(shell cat pyproject.toml constraints.txt $$(find idlmam -name '*.py' | LC_ALL=C sort) \
             | sha256sum | cut -c1-16)-$(IDL_BUDGET)
book: $(STAMP) data ## the site into _build/html, every page executed (IDL_BUDGET=full)
	@if [ "$$(cat _build/.book-key 2>/dev/null)" != "$(BOOK_KEY)" ]; then \
	  echo "make book: package, pins or budget changed (key $(BOOK_KEY)): executing every page"; \
	  rm -rf _build/.jupyter_cache _build/.doctrees _build/.book-key; \
	else echo "make book: key $(BOOK_KEY) unchanged: pages whose code did not change come from the cache"; fi
	IDL_BUDGET=$(IDL_BUDGET) $(BIN)/python tools/execute_pages.py --jobs $(BOOK_JOBS)
	IDL_BUDGET=$(IDL_BUDGET) $(BIN)/jupyter-book build . -W --keep-going
	echo "$(BOOK_KEY)" > _build/.book-key

# Colab notebooks made from the executed notebooks of the last `make book` (any budget): that
# build's outputs, glued numbers instead of roles, plain Markdown instead of MyST, the setup cell
# first. One per notebook page, under _build/colab/book/... PIN: what every setup cell installs
# (idlmam[tune]==X.Y.Z for a release, idlmam[tune] @ git+<repository>@<sha> otherwise); without
# it, the latest release, as on main.
PIN ?=
colab: $(STAMP) ## Colab notebooks from the last `make book` (PIN= what they install)
	$(BIN)/python tools/colab.py --build _build --out _build/colab $(if $(PIN),--pin '$(PIN)')

# the checks of a built site on the one `make book` built (any budget), or on IDL_SITE=<html
# folder>, instead of the quick build that `make test` makes for them: the text readers see
# (tests/test_site_text.py: no raw MyST, raw TeX or Python reprs), then the browser
# (tests/test_site.py); screenshots land in _build/screenshots/
IDL_SITE ?= $(CURDIR)/_build/html
site-check: $(STAMP) system-deps ## the site `make book` built (or IDL_SITE=): its text, then in a browser
	IDL_SITE=$(IDL_SITE) $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_site_text.py tests/test_site.py

# watch a study in the browser while workers fill it: optuna-dashboard on 127.0.0.1 only, on any
# storage URL `python -m idlmam.tune` takes (idlmam/tune/dashboard.py); it prints the address to
# open. STUDY, if given, must exist there. Ctrl-C stops it.
#   make dashboard STORAGE=journal:///study.log [STUDY=ch5] [PORT=8080]
PORT ?= 8080
dashboard: $(STAMP) ## optuna-dashboard on STORAGE= (and STUDY=, PORT=)
	@test -n '$(STORAGE)' || { echo "make dashboard: say which storage, e.g. STORAGE=sqlite:///study.db" >&2; exit 2; }
	$(BIN)/python -m idlmam.tune.dashboard --storage '$(STORAGE)' $(if $(STUDY),--study '$(STUDY)') --port $(PORT) --host 127.0.0.1

# after editing a notebook's .py: refresh its paired .ipynb and its reference outputs (quick
# budget, the one the nbval suite compares against). NB=book/02_schedules.py for just one.
NB ?= $(wildcard book/*.py book/exercises/*.py)
sync: $(STAMP) data ## NB=book/x.py: its .ipynb and reference outputs, quick budget
	$(BIN)/jupytext --to ipynb --update -q $(NB)
	IDL_BUDGET=quick IDL_DEVICE=cpu $(BIN)/jupyter execute --inplace $(NB:.py=.ipynb)
	$(BIN)/jupytext --to py:percent -q $(NB:.py=.ipynb)  # the .py as jupytext writes it: --sync stays a no-op

clean: ## remove _build (the next `make book` executes every page)
	rm -rf _build
