# Sourced by the set-up scripts: messages, root/sudo, apt.
# shellcheck shell=bash

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup]\033[0m %s\n' "$*" >&2; exit 1; }

# Root runs system commands as is; anyone else through sudo (apt, the RabbitMQ CLI tools, which
# need the broker's Erlang cookie in the rabbitmq user's home, and PostgreSQL's cluster tools).
SUDO=()
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 \
        || die "installing and starting PostgreSQL and RabbitMQ needs root: run this as root or install sudo"
    SUDO=(sudo)
fi
as_root() { "${SUDO[@]}" "$@"; }

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || die "$* missing and this is not a Debian/Ubuntu system: install $* yourself, then run this again"
    say "installing $* with apt-get (needs root)"
    if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# True when apt knows a package of that name with something to install (Debian and Ubuntu
# name some packages differently). A fresh machine may have no package lists yet: refresh them
# once before saying no. (The policy is read whole first: `apt-cache … | grep -q` under
# `pipefail` fails when grep's early exit cuts apt-cache off with SIGPIPE.)
apt_candidate() { local policy; policy=$(apt-cache policy "$1" 2>/dev/null) || true; [[ $policy == *"Candidate: "[!\(]* ]]; }
apt_has() {
    apt_candidate "$1" && return 0
    command -v apt-get >/dev/null 2>&1 || return 1
    if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    apt_candidate "$1"
}
