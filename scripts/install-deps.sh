#!/bin/sh
# Install the Debian packages pstm needs to build, test and benchmark.
# Idempotent; silent when everything is present; apt-get update only when
# something must be installed.
set -e
PKGS="build-essential pkg-config libpmem-dev liburcu-dev libcmocka-dev
zlib1g-dev libjson-c-dev perl liblmdb-dev libsqlite3-dev libpmemobj-dev gnuplot-nox
python3-dev python3-pytest redis-tools redis-server libsystemd-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
