"""pip install --no-build-isolation ./python  (offline; Debian python3-dev).

Builds pstm._core against the static library of the checkout above
(../build/libpstm.a, made with `make` first if it is missing), so the
installed module needs no libpstm.so at run time."""
import os
import re
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
LIBA = os.path.join(TOP, "build", "libpstm.a")


def version():
    with open(os.path.join(TOP, "include", "pstm.h")) as f:
        v = dict(re.findall(r"#define PSTM_VERSION_(MAJOR|MINOR|PATCH) (\d+)",
                            f.read()))
    return "%s.%s.%s" % (v["MAJOR"], v["MINOR"], v["PATCH"])


if not os.path.exists(LIBA):
    subprocess.check_call(["make", "-C", TOP, "build/libpstm.a"])

setup(
    name="pstm",
    version=version(),
    description="Persistent software transactional memory shared by processes",
    packages=["pstm"],
    ext_modules=[Extension(
        "pstm._core", sources=["pstm/_core.c"],
        include_dirs=[os.path.join(TOP, "include")],
        extra_compile_args=["-std=gnu11", "-pthread"],
        extra_objects=[LIBA],
        libraries=["pmem", "urcu-common", "z"],
        extra_link_args=["-pthread"],
    )],
    python_requires=">=3.9",
)
