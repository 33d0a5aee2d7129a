#!/bin/sh
# Prints the Debian version of the package `make package` builds from this
# git checkout, from the same commit the binaries' --version names:
#   v1.2.3 checked out (a tag)       1.2.3        (v1.2.3-rc1: 1.2.3~rc1)
#   5 commits after tag v1.2.3      1.2.3+git20261201045500.94c5304abcde
#   no tag before HEAD              0.0.0~git20261201045500.94c5304abcde
# plus "~dirty" when the tree has uncommitted changes (so the clean build
# of the same commit sorts above it). The timestamp is the commit's (UTC),
# so later commits sort later; the 12-digit commit is the one
# `wyvernd --version` prints.
set -eu
cd "$(dirname "$0")/.."
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo "deb-version: not a git checkout with a commit; set DEB_VERSION" >&2
	exit 1
fi
export GIT_OPTIONAL_LOCKS=0
sha=$(git rev-parse --short=12 HEAD)
at=$(TZ=UTC git show -s --date=format-local:%Y%m%d%H%M%S --format=%cd HEAD)
# A release tag's version, Debian-ordered: "-" before a pre-release is "~".
debtag() { printf '%s\n' "${1#v}" | sed 's/-/~/'; }
if tag=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null); then
	v=$(debtag "$tag")
elif tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null); then
	v="$(debtag "$tag")+git$at.$sha"
else
	v="0.0.0~git$at.$sha"
fi
if [ -n "$(git status --porcelain)" ]; then
	v="$v~dirty"
fi
echo "$v"
