#!/usr/bin/env bash
# Installs the Debian 12 packages shmsession needs to build, test and
# benchmark. Idempotent: when everything is present it only checks and exits.
# Boost is pinned to 1.81 (never 1.74, whose interprocess mutexes hang
# forever when a holder dies; never libboost-all-dev, which pulls 1.74).
set -euo pipefail

packages=(
  # toolchain
  cmake g++ make pkg-config
  # libraries (Boost 1.81 only)
  libboost1.81-dev libboost-serialization1.81-dev libboost-test1.81-dev
  libboost-json1.81-dev libtbb-dev libxxhash-dev libcli11-dev libzstd-dev
  # HMAC of the agent <-> backup wire frames (sync/wire)
  libsodium-dev
  # clang with libFuzzer for the fuzz targets; clang-format and clang-tidy
  # for the checks before the builds (tools/scripts/check-format.sh, tidy.sh)
  clang libclang-rt-14-dev clang-format-14 clang-tidy-14
  # benchmark peers, started and stopped by shmbench itself and Redis by the
  # demo shop's `serve --sessions redis` (never as services: see
  # policy-rc.d below); memcached is primary's second peer
  redis-server libhiredis-dev
  memcached libmemcached-dev
  # the PHP session save handler (bindings/php): built against php8.2-dev,
  # tested in a real php-fpm pool behind nginx (both started on loopback
  # ports by the tests, never as services)
  php8.2-dev php8.2-cli php8.2-fpm nginx
  # `shmbench php`'s other handlers (phpredis, php-memcached) and its load
  # generator
  php8.2-redis php8.2-memcached wrk
  # process inspection used by the tests
  procps
  iproute2  # `ip netns` and veth pairs: test/sync/netns_replication_test
  nftables  # its chaos test: packet loss, duplication and resets on the link
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [[ $status == ii* ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if ((EUID != 0)); then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No service may be started by a package's postinst: benchmarks start their
# own peers on a free loopback port.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
trap '((created_policy)) && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
if dpkg-query -W -f='${db:Status-Abbrev}' libboost1.74-dev 2>/dev/null | grep -q '^ii'; then
  echo "install-deps: libboost1.74-dev is installed; shmsession needs Boost 1.81 only" >&2
  exit 1
fi
echo "install-deps: done"
