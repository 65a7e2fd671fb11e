# The two commands of the README: `make book` and `make test`. Everything else is a step of them.
PYTHON    ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
# full (the chapter's own numbers) or quick (a few minutes); notebooks read it through idlmam.budget
IDL_BUDGET ?= full
export IDL_DATA ?= $(CURDIR)/data
# no progress bars in pages or logs
export TQDM_DISABLE := 1
export PYTHONHASHSEED := 0

.PHONY: book test lint unit notebooks data venv system-deps sync clean site-check colab

venv: $(STAMP)
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch torchvision
	$(BIN)/pip install -q -c constraints.txt -e '.[all]'
	touch $@

# Debian packages the tests use (only as root with apt-get): a PostgreSQL server for the tuning
# tests, Chromium for the browser test of the built site (tests/test_site.py)
system-deps:
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

data: $(STAMP)
	$(BIN)/python -m idlmam.data

unit: $(STAMP) data system-deps
	$(BIN)/python -m pytest tests -q

NOTEBOOKS := $(wildcard book/*.ipynb book/exercises/*.ipynb)
notebooks: $(STAMP) data
	IDL_BUDGET=quick $(BIN)/python -m pytest -q -p no:cacheprovider --nbval $(NOTEBOOKS)

# the formatter and the linter, configured in pyproject.toml ([tool.ruff]); `ruff format .` fixes
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

test: lint unit notebooks

book: $(STAMP) data
	rm -rf _build/.jupyter_cache
	IDL_BUDGET=$(IDL_BUDGET) $(BIN)/jupyter-book build . --all -W --keep-going

# Colab notebooks made from the executed notebooks of the last `make book` (any budget): that
# build's outputs, glued numbers instead of roles, plain Markdown instead of MyST, the setup cell
# first. One per notebook page, under _build/colab/book/...
colab: $(STAMP)
	$(BIN)/python -m idlmam.colab --build _build --out _build/colab

# the browser checks of tests/test_site.py on the site `make book` built (any budget), instead of
# the quick build that `make test` makes for them; screenshots land in _build/screenshots/
site-check: $(STAMP) system-deps
	IDL_SITE=$(CURDIR)/_build/html $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_site.py

# after editing a notebook's .py: refresh its paired .ipynb and its reference outputs (quick
# budget, the one the nbval suite compares against). NB=book/02_schedules.py for just one.
NB ?= $(wildcard book/*.py book/exercises/*.py)
sync: $(STAMP) data
	$(BIN)/jupytext --to ipynb --update -q $(NB)
	IDL_BUDGET=quick $(BIN)/jupyter execute --inplace $(NB:.py=.ipynb)

clean:
	rm -rf _build
