# builders/manylinux/toolchain.Dockerfile -- the amd64 Debian 11 (bullseye, glibc 2.31)
# image in which bootstrap compiles the CPythons for the manylinux stand-ins
# (lib/build-cpython): x86_64 natively, aarch64 with Debian's cross gcc. Only an
# intermediate: nothing from it ends up in the images but the install trees.
#
# Why: bullseye is the oldest Debian the archive still serves (buster is gone), so its
# glibc 2.31 is the lowest a stand-in can have. The CPython sources are Debian's pristine
# upstream tarballs, each from the suite that has it (PYTHON_SOURCES, set by bootstrap
# from the versions the images carry, e.g. "python3.9/bullseye python3.11/bookworm
# python3.13/trixie"; no current suite has 3.10 or 3.12). sid is listed for 3.14/3.15:
# its Release file is past its Valid-Until on the archive reachable here, hence
# Check-Valid-Until=false (and its pool no longer has the files that index names).
# Why cross-compile aarch64: minutes natively, far longer under QEMU (environment.md).
#
# The build script (build-python) is mounted when bootstrap runs it, so changing it does
# not rebuild this image.
#
# Headers of both arches come from Debian's multiarch -dev packages (arm64 ones next to
# amd64 ones), which the cross gcc searches; the optional modules (zlib, ctypes/libffi,
# ssl, bz2, lzma, uuid, sqlite3, _decimal/libmpdec, compression.zstd) link the same
# bullseye libraries the images have (libmpdec-dev: 3.15 no longer bundles mpdecimal).

ARG BASE
FROM ${BASE}
ARG RECIPE
ARG PYTHON_SOURCES
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
# Release packages only, no security updates (see base/mkrootfs): the amd64 and arm64
# copies of a multiarch package must have the same version.
RUN dpkg --add-architecture arm64 \
 && sed -i '/-security/d' /etc/apt/sources.list \
 && for s in bullseye bookworm trixie sid; do echo "deb-src http://deb.debian.org/debian $s main"; done \
        >/etc/apt/sources.list.d/src.list \
 && apt-get -o Acquire::Check-Valid-Until=false update \
 && apt-get install -y make xz-utils gcc g++ libc6-dev \
        zlib1g-dev libffi-dev libssl-dev libbz2-dev liblzma-dev uuid-dev \
        libsqlite3-dev libmpdec-dev libzstd-dev \
        gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross \
        zlib1g-dev:arm64 libffi-dev:arm64 libssl-dev:arm64 libbz2-dev:arm64 \
        liblzma-dev:arm64 uuid-dev:arm64 libsqlite3-dev:arm64 libmpdec-dev:arm64 libzstd-dev:arm64 \
 && apt-get clean \
 && mkdir -p /src && cd /src \
 && apt-get source --download-only ${PYTHON_SOURCES} \
 && rm -f /src/*.debian.tar.* /src/*.dsc /src/*.asc \
 && rm -rf /var/lib/apt/lists/*_source_* \
 && ls -l /src
LABEL org.wheelhouse.role=toolchain org.wheelhouse.recipe=${RECIPE}
