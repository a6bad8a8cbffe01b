# builders/musllinux/toolchain.Dockerfile -- the amd64 image in which bootstrap compiles,
# for musl (x86_64 natively, aarch64 cross) from Debian's own source packages: the static
# libraries the CPythons link (build-deps), the CPythons (lib/build-cpython), the
# libraries behind the images' `apk add` (build-apk), and libc++ with zig (build-libcxx).
#
# Sources, each pinned to a suite (several deb-src suites are listed, and apt-get source
# would otherwise take the newest): the CPythons' pristine upstream tarballs as the glibc
# toolchain (PYTHON_SOURCES, from bootstrap); OpenSSL 1.1.1w from bullseye (cryptography
# 3.4.x cannot build against OpenSSL 3, which removed ERR_GET_FUNC; every CPython 3.9-3.15
# accepts 1.1.1, and the manylinux stand-in has bullseye's 1.1.1 too); mpdecimal 4.0.1
# from trixie (bookworm has no mpdecimal source; 4.0.1 is what manylinux builds); the
# rest from bookworm. sid is listed for 3.14/3.15; its Release file is past its
# Valid-Until on the archive reachable here, hence Check-Valid-Until=false. tcl: SQLite's
# source is the canonical tree, whose amalgamation is generated with tclsh. perl: OpenSSL's
# Configure. Those scripts (and zig) are mounted when bootstrap runs
# them, so changing one rebuilds only its own output. Only an intermediate: nothing from
# it ends up in the images but those install trees.
#
# Why cross-compile aarch64 here instead of building natively under QEMU: the same build
# takes minutes natively and would take far longer emulated (see environment.md).
# Why in a container instead of on the host: the host's dpkg stays untouched (no arm64
# foreign architecture, no deb-src entry, no musl packages).
#
# patchelf (Debian's; enough for --set-soname): musl-setup --wrapper gives the link-time
# libc Alpine's SONAME, so everything built here says NEEDED libc.musl-<arch>.so.1.
#
# No libc6-dev on purpose: with no glibc headers installed, CPython's setup.py cannot
# pick up a glibc header by accident while building musl modules.

ARG BASE
FROM ${BASE}
ARG RECIPE
ARG PYTHON_SOURCES
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
COPY musl-setup /usr/local/libexec/wheelhouse/musl-setup
# Release packages only, no security updates (see base/mkrootfs): the amd64 and arm64
# copies of a multiarch package must have the same version.
RUN dpkg --add-architecture arm64 \
 && sed -i '/-security/d' /etc/apt/sources.list \
 && for s in bullseye bookworm trixie sid; do echo "deb-src http://deb.debian.org/debian $s main"; done \
        >/etc/apt/sources.list.d/src.list \
 && apt-get -o Acquire::Check-Valid-Until=false update \
 && apt-get install -y make xz-utils bzip2 python3.11 perl tcl \
        musl-tools musl-dev linux-libc-dev \
        gcc-aarch64-linux-gnu musl-dev:arm64 linux-libc-dev-arm64-cross patchelf \
 && apt-get clean \
 && mkdir -p /src && cd /src \
 && apt-get source --download-only ${PYTHON_SOURCES} openssl/bullseye mpdecimal/trixie \
        zlib/bookworm libffi/bookworm libyaml/bookworm bzip2/bookworm xz-utils/bookworm \
        sqlite3/bookworm libzstd/bookworm postgresql-15/bookworm \
 && rm -f /src/*.debian.tar.* /src/*.dsc /src/*.asc /src/*.diff.gz /src/sqlite3_*orig-www* \
 && rm -rf /var/lib/apt/lists/*_source_* \
 && ls -l /src \
 && /usr/local/libexec/wheelhouse/musl-setup x86_64 --runtime --wrapper \
 && /usr/local/libexec/wheelhouse/musl-setup aarch64 --runtime --wrapper
LABEL org.wheelhouse.role=toolchain org.wheelhouse.recipe=${RECIPE}
