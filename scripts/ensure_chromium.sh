#!/usr/bin/env bash
# The suite's /docs browser test (tests/integration/test_docs_browser.py) drives Debian's Chromium
# at /usr/bin/chromium with Playwright (no browser download). `make test` and .ci/run both call
# this script, so they install it the same way: where it is missing and we may install system
# packages (root with apt-get), Debian's `chromium` is installed; elsewhere one line says what to
# install and the exit status is 1, before any test runs. The browser test is never skipped.
set -euo pipefail

chromium=/usr/bin/chromium
if [ -x "$chromium" ]; then exit 0; fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the /docs browser test (apt-get install chromium)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  if [ -x "$chromium" ]; then exit 0; fi
  echo "apt-get installed chromium, but $chromium is still missing" >&2
  exit 1
fi

echo "the tests need Chromium at $chromium: install Debian's chromium package (sudo apt-get install chromium), then run make test again" >&2
exit 1
