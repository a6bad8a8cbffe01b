# builders/manylinux/toolchain.Dockerfile -- the amd64 Debian 11 (bullseye, glibc 2.31)
# image in which bootstrap compiles CPython 3.11 for the manylinux stand-ins: x86_64
# natively, aarch64 with Debian's cross gcc. Only an intermediate: nothing from it ends up
# in the images but the install trees.
#
# Why: bullseye is the oldest Debian the archive still serves (buster is gone), so its
# glibc 2.31 is the lowest a stand-in can have; but bullseye ships CPython 3.9 only. The
# 3.11 source is bookworm's (deb-src), like the musl toolchain's.
# Why cross-compile aarch64: minutes natively, far longer under QEMU (environment.md).
#
# The build script (build-python) is mounted when bootstrap runs it, so changing it does
# not rebuild this image.
#
# Headers of both arches come from Debian's multiarch -dev packages (arm64 ones next to
# amd64 ones), which the cross gcc searches; the modules that matter for builds (zlib,
# ctypes/libffi, ssl, bz2, lzma, uuid) link the same bullseye libraries the images have.

ARG BASE
FROM ${BASE}
ARG RECIPE
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
# Release packages only, no security updates (see base/mkrootfs): the amd64 and arm64
# copies of a multiarch package must have the same version.
RUN dpkg --add-architecture arm64 \
 && sed -i '/-security/d' /etc/apt/sources.list \
 && echo 'deb-src http://deb.debian.org/debian bookworm main' >/etc/apt/sources.list.d/src.list \
 && apt-get update \
 && apt-get install -y make xz-utils gcc g++ libc6-dev \
        zlib1g-dev libffi-dev libssl-dev libbz2-dev liblzma-dev uuid-dev \
        gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross \
        zlib1g-dev:arm64 libffi-dev:arm64 libssl-dev:arm64 libbz2-dev:arm64 \
        liblzma-dev:arm64 uuid-dev:arm64 \
 && apt-get clean \
 && mkdir -p /src && cd /src \
 && apt-get source --download-only python3.11 \
 && ls -l /src
LABEL org.wheelhouse.role=toolchain org.wheelhouse.recipe=${RECIPE}
