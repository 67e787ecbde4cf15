#!/usr/bin/env bash
# Install every language toolchain slmbench runs (Debian packages + npm), offline-capable
# afterwards. Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

have() { command -v "$1" >/dev/null 2>&1; }
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

need=()
want_pkg() {  # want_pkg PACKAGE [COMMAND-THAT-ALREADY-PROVIDES-IT]
  if [ -n "${2:-}" ] && have "$2"; then return; fi
  pkg_installed "$1" || need+=("$1")
}

want_pkg bubblewrap bwrap
want_pkg g++ g++
want_pkg mold mold  # links C++ test programs in a fraction of gold's time
want_pkg libboost-dev
want_pkg libssl-dev
want_pkg openjdk-17-jdk-headless javac
want_pkg golang-go go
want_pkg golang-github-stretchr-testify-dev
want_pkg rustc rustc
want_pkg cargo cargo
# the crates' default features are packages of their own (regex's pulls aho-corasick and
# memchr), which --no-install-recommends would leave out
want_pkg librust-rand-dev
want_pkg librust-rand+default-dev
want_pkg librust-regex-dev
want_pkg librust-regex+default-dev
want_pkg librust-md5-dev
want_pkg librust-md5+default-dev
want_pkg php-cli php
want_pkg ruby ruby
want_pkg bc bc
want_pkg nodejs node
want_pkg npm npm
# headless Chromium renders the study report in the browser tests
want_pkg chromium chromium

if [ "${#need[@]}" -gt 0 ]; then
  echo "install-toolchains: apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Ruby's test-unit is a bundled gem of Debian's ruby; install the package if it is missing.
if ! ruby -e "require 'test/unit'" >/dev/null 2>&1; then
  $SUDO apt-get install -y -qq ruby-test-unit >/dev/null
fi

# npm: the TypeScript compiler and js-md5 (HumanEvalPack JavaScript/162), global.
npm_root="$(npm root -g 2>/dev/null)"
npm_need=()
if ! [ -d "$npm_root/typescript" ] || ! grep -q '"version": "5\.' "$npm_root/typescript/package.json"; then npm_need+=(typescript@5); fi
[ -d "$npm_root/js-md5" ] || npm_need+=(js-md5)
if [ "${#npm_need[@]}" -gt 0 ]; then
  echo "install-toolchains: npm install -g ${npm_need[*]}"
  $SUDO npm install -g --no-audit --no-fund "${npm_need[@]}" >/dev/null
fi

echo "install-toolchains: done"
