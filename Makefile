# `make demo` and `make test` work on a fresh machine: they create .venv/, install the
# project (CPU torch here; `make TORCH_SPEC=torch ...` on a GPU machine takes the
# ordinary CUDA build), install Tesseract when it can, then run.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
DEMO_INDEX ?= .pagerag-demo

.PHONY: install demo test test-fast bench eval faults clean tesseract chromium

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(VENV)/.installed

install: $(VENV)/.installed tesseract

# Tesseract is the faster OCR engine (see README); without it pagerag uses RapidOCR.
# Besides English: orientation detection (osd) and the language packs in TESSERACT_LANGS
# (README "Languages"); add others with `apt-get install tesseract-ocr-XXX`.
TESSERACT_LANGS ?= deu fra rus ell
tesseract:
	@missing=""; command -v tesseract >/dev/null 2>&1 || missing="tesseract-ocr"; \
	for l in osd $(TESSERACT_LANGS); do \
	  tesseract --list-langs 2>/dev/null | grep -qx "$$l" || missing="$$missing tesseract-ocr-$$l"; done; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: could not install $$missing; OCR falls back to RapidOCR / English only"; \
	  else echo "note: not installed: $$missing (apt-get install $$missing); OCR falls back to RapidOCR / English only"; fi; }

# Headless chromium drives the web app's browser test (tests/test_web_browser.py skips without it).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the browser test will be skipped"; \
	  else echo "note: chromium is not installed (apt-get install chromium); the browser test will be skipped"; fi; }

demo: install
	$(BIN)/pagerag index build corpora/sample --index $(DEMO_INDEX)
	$(BIN)/pagerag index status --index $(DEMO_INDEX)
	@echo; echo '$$ pagerag search "When was the parking lot decision made?"'
	@$(BIN)/pagerag search "When was the parking lot decision made?" -k 3 --index $(DEMO_INDEX)
	@echo; echo '$$ pagerag search "water authority annual report capital budget"'
	@$(BIN)/pagerag search "water authority annual report capital budget" -k 3 --index $(DEMO_INDEX)
	@echo; echo '$$ pagerag search "rent increase" --json -k 1'
	@$(BIN)/pagerag search "rent increase" --json -k 1 --index $(DEMO_INDEX)
	@echo; echo '$$ pagerag ask "What did the library board decide about the parking lot?"'
	@# exit code 4: no model could be loaded; the evidence is shown instead
	@$(BIN)/pagerag ask "What did the library board decide about the parking lot?" -k 3 \
	  $(if $(MODEL),-m $(MODEL)) $(if $(BACKEND),--backend $(BACKEND)) --index $(DEMO_INDEX); \
	  rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 4 ]
	@echo; echo '$$ pagerag eval corpora/sample-questions.jsonl --root corpora/sample --mode hybrid'
	@$(BIN)/pagerag eval corpora/sample-questions.jsonl --root corpora/sample --mode hybrid --index $(DEMO_INDEX)

test: install chromium
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/python bench/run.py

eval: install
	$(BIN)/python bench/eval_retrieval.py

# bad-input corpus and seeded SIGKILL trials: prints the table in README "Fault tolerance"
faults: install
	HF_HUB_OFFLINE=1 $(BIN)/python bench/faults.py

clean:
	rm -rf $(DEMO_INDEX) .pytest_cache
