# The two set-up commands of the README: `make run` (the main job) and `make test`.
# Each creates .venv if missing and installs what it needs (tools/bootstrap.sh).
.PHONY: run test lint bench bootstrap package screenshots

bootstrap:
	@./tools/bootstrap.sh

# With a desktop ($DISPLAY or $WAYLAND_DISPLAY) the softphone's window; without one, the demo.
run: bootstrap
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then .venv/bin/p2psip gui; else .venv/bin/p2psip demo; fi

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy --strict reload_core app/sip app/phone app/gui app/media app/bench

# The GUI tests run in a pytest process of their own: a QApplication left alive after them
# had pytest-qt process Qt events between later tests, which crashed the interpreter once.
test: lint
	.venv/bin/python -m pytest -q -p no:cacheprovider --ignore=tests/gui
	.venv/bin/python -m pytest -q -p no:cacheprovider tests/gui

# docs/screenshots/*.png: each main screen of the GUI from a real run, rendered under an
# Xvfb server the script starts and stops itself (tools/screenshots.py).
screenshots: bootstrap
	.venv/bin/python tools/screenshots.py --out docs/screenshots

bench: bootstrap
	.venv/bin/python bench/wire_bench.py

# The installers (packaging/README.md): dist/p2psip-phone (PyInstaller folder) and the .deb.
package: bootstrap
	@.venv/bin/python -c "import PyInstaller" 2>/dev/null || .venv/bin/python -m pip install -q -e ".[package]"
	./packaging/build.sh
