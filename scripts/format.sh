#!/usr/bin/env bash
# Keeps formatting mechanical with swift-format (part of the Swift toolchain) and the repository's
# .swift-format configuration (4-space indent, 140 columns, documented public API).
#
#   scripts/format.sh                 format the Swift files changed against main (and new ones)
#   scripts/format.sh FILE...         format these files
#   scripts/format.sh --all           format every file under Sources/ and Tests/
#   scripts/format.sh --lint [FILE...] report what the formatter or the lint rules would change;
#                                     exit 1 if anything would (the changed files by default)
#
# The tree is formatted file by file as it is touched, so that a reformatting never hides a change
# in a diff: run it on what you changed, commit the result with the change.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift-format >/dev/null 2>&1 || [ -x /opt/swift/usr/bin/swift-format ] || {
    echo "error: swift-format is not installed (it comes with Swift 6 toolchains)" >&2; exit 1; }
formatter=$(command -v swift-format || echo /opt/swift/usr/bin/swift-format)

mode=format
if [ "${1:-}" = "--lint" ]; then mode=lint; shift; fi
files=()
if [ "${1:-}" = "--all" ]; then
    mapfile -t files < <(git ls-files 'Sources/*.swift' 'Tests/*.swift')
elif [ $# -gt 0 ]; then
    files=("$@")
else
    base=$(git merge-base HEAD main 2>/dev/null || echo HEAD)
    mapfile -t files < <({ git diff --name-only --diff-filter=AM "$base" -- '*.swift'; git ls-files --others --exclude-standard -- '*.swift'; } | sort -u)
fi
[ ${#files[@]} -gt 0 ] || { echo "no Swift files to $mode"; exit 0; }

if [ "$mode" = lint ]; then
    exec "$formatter" lint --strict --configuration .swift-format "${files[@]}"
fi
"$formatter" format --in-place --configuration .swift-format "${files[@]}"
echo "formatted ${#files[@]} files"
