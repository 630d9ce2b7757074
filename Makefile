# Two entry points, both self-installing on a fresh machine (Python 3.11, pip; apt-get where needed):
#   make demo   set up .venv, fetch the sample corpus, run jobs/llama_mini.yaml (the whole recipe) on an embedded local Ray
#   make test   set up .venv, run the whole test suite
PY      := .venv/bin/python
EXTRAS  := dev,sources,quality,dedup,report,train
STAMP   := .venv/.installed

.PHONY: demo test setup clean

demo: setup
	.venv/bin/refinery samples fetch --dest samples    # the real sample corpus, pinned + sha256-checked
	.venv/bin/refinery run jobs/llama_mini.yaml        # raw data -> corpus -> ... -> aligned model -> report

test: setup .venv/.test-tools
	$(PY) -m pytest -q

# Only the tests need a browser: the report is checked in headless Chromium (Debian's package).
.venv/.test-tools: corpus/report/install_chromium.sh
	bash corpus/report/install_chromium.sh
	touch $@

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	bash corpus/lm/build_kenlm.sh .venv/bin          # KenLM's lmplz and build_binary, from the kenlm sdist
	touch $(STAMP)

clean:
	rm -rf .venv runs
