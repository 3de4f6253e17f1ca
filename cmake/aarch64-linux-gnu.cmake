# Cross build for aarch64 Linux with Debian's toolchain (gcc-aarch64-linux-gnu) and the arm64
# -dev packages installed through multiarch (scripts/setup.sh cross); tests run under qemu-aarch64
# (CMAKE_CROSSCOMPILING_EMULATOR, so ctest runs them there). docs/testing.md.
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(MP_CROSS_TRIPLET aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${MP_CROSS_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${MP_CROSS_TRIPLET})
# multiarch: arm64 libraries live in /usr/lib/aarch64-linux-gnu of the host root, their .pc files
# beside them; never pick up the host's x86-64 ones
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${MP_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(CMAKE_FIND_ROOT_PATH /usr/${MP_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# Test executables run under user-mode qemu. No -L / QEMU_LD_PREFIX: the loader and C library
# come from the host root's multiarch libc6:arm64 (which the arm64 -dev packages pull in) like
# every other arm64 library; mixing the cross package's ld.so (/usr/aarch64-linux-gnu) with
# multiarch libraries of another glibc build hangs the first pthread_create.
find_program(MP_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${MP_QEMU_AARCH64})
