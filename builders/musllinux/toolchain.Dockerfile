# builders/musllinux/toolchain.Dockerfile -- the amd64 image in which bootstrap compiles
# the musl CPythons (x86_64 natively, aarch64 cross) from Debian's own source packages.
# Only an intermediate: nothing from it ends up in the images but the install trees.
#
# Why cross-compile aarch64 here instead of building natively under QEMU: the same build
# takes minutes natively and would take far longer emulated (see environment.md).
# Why in a container instead of on the host: the host's dpkg stays untouched (no arm64
# foreign architecture, no deb-src entry, no musl packages).
#
# No libc6-dev on purpose: with no glibc headers installed, CPython's setup.py cannot
# pick up a glibc header by accident while building musl modules.

ARG BASE
FROM ${BASE}
ARG RECIPE
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
COPY musl-setup /usr/local/libexec/wheelhouse/musl-setup
RUN dpkg --add-architecture arm64 \
 && echo 'deb-src http://deb.debian.org/debian bookworm main' >/etc/apt/sources.list.d/src.list \
 && apt-get update \
 && apt-get install -y make xz-utils bzip2 python3.11 \
        musl-tools musl-dev linux-libc-dev \
        gcc-aarch64-linux-gnu musl-dev:arm64 linux-libc-dev-arm64-cross \
 && apt-get clean \
 && mkdir -p /src && cd /src \
 && apt-get source --download-only python3.11 zlib \
 && ls -l /src \
 && /usr/local/libexec/wheelhouse/musl-setup x86_64 --runtime --wrapper \
 && /usr/local/libexec/wheelhouse/musl-setup aarch64 --runtime --wrapper
COPY build-python /usr/local/libexec/wheelhouse/build-python
LABEL org.wheelhouse.role=toolchain org.wheelhouse.recipe=${RECIPE}
