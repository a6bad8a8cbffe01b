# builders/musllinux/toolchain.Dockerfile -- the amd64 image in which bootstrap compiles,
# for musl (x86_64 natively, aarch64 cross) from Debian's own source packages: the
# CPythons (build-python), the libraries behind the images' `apk add` (build-apk), and
# libc++ with zig (build-libcxx). Those scripts (and zig) are mounted when bootstrap runs
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
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
COPY musl-setup /usr/local/libexec/wheelhouse/musl-setup
# Release packages only, no security updates (see base/mkrootfs): the amd64 and arm64
# copies of a multiarch package must have the same version.
RUN dpkg --add-architecture arm64 \
 && sed -i '/-security/d' /etc/apt/sources.list \
 && echo 'deb-src http://deb.debian.org/debian bookworm main' >/etc/apt/sources.list.d/src.list \
 && apt-get update \
 && apt-get install -y make xz-utils bzip2 python3.11 \
        musl-tools musl-dev linux-libc-dev \
        gcc-aarch64-linux-gnu musl-dev:arm64 linux-libc-dev-arm64-cross patchelf \
 && apt-get clean \
 && mkdir -p /src && cd /src \
 && apt-get source --download-only python3.11 zlib libffi libyaml \
 && ls -l /src \
 && /usr/local/libexec/wheelhouse/musl-setup x86_64 --runtime --wrapper \
 && /usr/local/libexec/wheelhouse/musl-setup aarch64 --runtime --wrapper
LABEL org.wheelhouse.role=toolchain org.wheelhouse.recipe=${RECIPE}
