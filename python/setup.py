"""Builds the mlxport Python package: the pure-Python ctypes bindings (mlxport/) plus the shared C
library libmlxport.so, built from the repository with CMake (the target mlxport_shared) and copied
into the package, so that `import mlxport` needs nothing but numpy at run time.

Environment:
  MLXPORT_PREBUILT_LIB  path of an already built libmlxport.so.X.Y.Z to ship instead of building
                        (the tests use the build tree's; CI stays fast)
  MLXPORT_SOURCE_DIR    the repository (default: the folder above this one)
  MLXPORT_CMAKE_ARGS    extra arguments for the CMake configure step
"""
import os
import re
import shlex
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("MLXPORT_SOURCE_DIR") or os.path.dirname(HERE)


def version():
    text = open(os.path.join(ROOT, "include", "mlxport", "common.h")).read()
    return ".".join(re.search(r"#define MLXPORT_VERSION_%s (\d+)" % k, text).group(1)
                    for k in ("MAJOR", "MINOR", "PATCH"))


class BuildPyWithLibrary(build_py):
    """build_py, then the C library into the package folder."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "mlxport")
        os.makedirs(dest, exist_ok=True)
        lib = os.environ.get("MLXPORT_PREBUILT_LIB")
        if not lib:
            tmp = os.path.join(self.get_finalized_command("build").build_temp, "cmake")
            cfg = ["cmake", "-S", ROOT, "-B", tmp, "-DCMAKE_BUILD_TYPE=Release", "-DMP_WERROR=OFF", "-DMP_PYTHON="]
            cfg += shlex.split(os.environ.get("MLXPORT_CMAKE_ARGS", ""))
            subprocess.check_call(cfg)
            jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 2)
            subprocess.check_call(["cmake", "--build", tmp, "--target", "mlxport_shared", "-j", jobs])
            lib = os.path.join(tmp, "libmlxport.so." + version())
        if not os.path.isfile(lib):
            raise SystemExit(f"mlxport: the C library {lib} was not found")
        shutil.copyfile(os.path.realpath(lib), os.path.join(dest, "libmlxport.so." + version().split(".")[0]))


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for the platform."""

    def has_ext_modules(self):
        return True


setup(
    name="mlxport",
    version=version(),
    description="Hugging Face encoder models to MLX format: convert, run natively, evaluate (ctypes over libmlxport)",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.8",
    packages=["mlxport"],
    install_requires=["numpy"],
    cmdclass={"build_py": BuildPyWithLibrary},
    distclass=BinaryDistribution,
    zip_safe=False,
)
