#!/bin/sh
# Builds libkqueue (a userspace kqueue over epoll, https://github.com/mheily/libkqueue)
# from a source folder you provide, into a build folder, so the kqueue
# selector can be exercised on Linux. Never copy its code into this repo.
#
#   scripts/build-libkqueue.sh <libkqueue-source-dir> <build-dir>
#
# Needs cmake, make and a C compiler. Prints, as its last line, the path of
# the built library; export it as AIOLOOP_LIBKQUEUE:
#
#   export AIOLOOP_LIBKQUEUE="$(scripts/build-libkqueue.sh ~/src/libkqueue /tmp/libkqueue-build | tail -n 1)"
#   npm run test:kqueue
#
# The generated <sys/event.h> is in <build-dir>/include (tests compile
# against it; set AIOLOOP_LIBKQUEUE_INCLUDE if you move it).
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: $0 <libkqueue-source-dir> <build-dir>" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
if [ ! -f "$src/CMakeLists.txt" ] || [ ! -f "$src/include/sys/event.h.in" ]; then
  echo "$0: $src does not look like libkqueue's source (no CMakeLists.txt / include/sys/event.h.in)" >&2
  exit 1
fi
for tool in cmake make cc; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "$0: '$tool' is needed (e.g. apt-get install cmake make gcc)" >&2
    exit 1
  }
done
mkdir -p "$2"
build=$(cd "$2" && pwd)
case "$build/" in
  "$(cd "$(dirname "$0")/.." && pwd)/"*)
    echo "$0: build outside this repository, not in $build" >&2
    exit 1
    ;;
esac

jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
# Progress goes to stderr; stdout carries only the library path.
(
  cd "$build"
  cmake -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$src"
  make -j"$jobs" kqueue
) 1>&2

lib=""
for name in libkqueue.so.0 libkqueue.so libkqueue.dylib; do
  if [ -e "$build/$name" ]; then
    lib="$build/$name"
    break
  fi
done
if [ -z "$lib" ]; then
  echo "$0: build finished but no libkqueue.so* found in $build" >&2
  exit 1
fi
if [ ! -f "$build/include/sys/event.h" ]; then
  echo "$0: warning: $build/include/sys/event.h not generated" >&2
fi
echo "$lib"
