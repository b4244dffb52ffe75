#!/usr/bin/env bash
# Installs what attnmap needs on a Debian/Ubuntu machine: the C++ libraries from apt and the
# pinned Python tools (torch, whose wheel also carries libtorch) into .venv. Safe to re-run.
# The package names are Debian 12's (what CI runs, in a fresh root); Ubuntu 22.04 and 24.04 LTS
# use the same names (not run by CI). Every find_package/pkg_check_modules of the build, the tests
# and the sanitizer job is covered: OpenCV (libopencv-dev ships OpenCVConfig.cmake), PNG, ZLIB,
# nlohmann_json, CLI11, spdlog, GTest, PCRE2, utf8proc, FreeType and fontconfig; scripts/fuzz.sh adds
# clang on its own.
# Fonts for the token labels of the answer strips (src/render/text_label.cpp picks one per character
# through fontconfig): fonts-dejavu-core for Latin, Greek, Cyrillic, Arabic and symbols (DejaVu Sans),
# fonts-unifont (about 11 MB) for everything else, CJK and emoji included: Unifont covers the BMP,
# Unifont Upper the planes above it, as scalable OpenType outlines FreeType draws at any size. Colour
# emoji fonts are no use here: FreeType cannot scale their fixed bitmap strikes.
# chromium + chromium-driver: the viewer's browser tests (tests/python/test_viewer_browser.py, with
# the pinned selenium of tools/requirements.txt) drive a headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(g++ make ninja-build pkg-config python3-venv
  libopencv-dev libpng-dev zlib1g-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libpcre2-dev libutf8proc-dev libgtest-dev
  libfreetype-dev libfontconfig-dev fonts-dejavu-core fonts-unifont
  chromium chromium-driver)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "bootstrap: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum tools/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python tools (tools/requirements.txt)" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -r tools/requirements.txt
  echo "$want" > "$stamp"
fi
# torchvision for the video oracle, in a folder of its own that only the video tests put on sys.path
# (tools/attnmap_tools/testing/torchvision_shim.py says why); --no-deps keeps the venv's torch.
oracle_stamp=.venv/video-oracle/.requirements.sha
oracle_want=$(sha256sum tools/requirements-video-oracle.txt | cut -d' ' -f1)
if [ "$(cat "$oracle_stamp" 2>/dev/null)" != "$oracle_want" ]; then
  echo "bootstrap: installing the video oracle's torchvision (tools/requirements-video-oracle.txt)" >&2
  rm -rf .venv/video-oracle
  .venv/bin/python -m pip install -q --no-deps --target .venv/video-oracle -r tools/requirements-video-oracle.txt
  echo "$oracle_want" > "$oracle_stamp"
fi
# The tools themselves (pyproject.toml: attnmap_tools, the attnmap-export command), editable so that
# they run from this checkout; their dependencies are the pinned ones above. Re-installed when
# pyproject.toml or the checkout's path changes, or when the command is missing.
pkg_stamp=.venv/.package.sha
pkg_want=$( (sha256sum pyproject.toml; pwd) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$pkg_stamp" 2>/dev/null)" != "$pkg_want" ] || [ ! -x .venv/bin/attnmap-export ]; then
  echo "bootstrap: installing the attnmap_tools package (editable, pyproject.toml)" >&2
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$pkg_want" > "$pkg_stamp"
fi
if ! command -v cmake >/dev/null 2>&1 || ! cmake --version | grep -qE 'version (3\.(2[0-9]|3[0-9])|[4-9])'; then
  .venv/bin/python -m pip install -q cmake==4.4.4
fi
