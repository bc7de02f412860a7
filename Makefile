# Everything runs in a local virtual environment, made on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# napari needs an X display with OpenGL: use a virtual one when headless.
XVFB := $(if $(DISPLAY),,$(shell command -v xvfb-run 2>/dev/null))
ON_DISPLAY := $(if $(XVFB),$(XVFB) -a -s "-screen 0 1920x1200x24",)
PYTEST_ARGS ?=

.PHONY: demo test lint format install screenshots clean

$(STAMP): setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all,testing]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/napari-avpt demo

test: $(STAMP)
	$(ON_DISPLAY) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The screenshots of docs/, made by the plugin's own demo command.
screenshots: $(STAMP)
	for s in mammogram ultrasound mri; do \
	  NAPARI_AVPT_WEIGHTS=/nonexistent $(ON_DISPLAY) $(VENV)/bin/napari-avpt demo --sample $$s --screenshot docs/images/sample_$$s.png; \
	done
	for s in mammogram ultrasound mri; do \
	  $(ON_DISPLAY) $(VENV)/bin/napari-avpt demo --sample $$s --screenshot docs/images/segment_$$s.png; \
	done
	$(ON_DISPLAY) $(VENV)/bin/napari-avpt demo --sample ultrasound --tune-screenshot docs/images/tune_dock.png

clean:
	rm -rf $(VENV) build *.egg-info
