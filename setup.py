"""Only what pyproject.toml cannot say: the example strategies (strategies/*.py) and the configs
(config/*.toml) ship inside the wheel as the packages ``qfex_oms.examples`` and ``qfex_oms.configs``,
read through ``importlib.resources`` (qfex_oms/app/bundled.py), without moving them in the checkout.
Everything else (metadata, dependencies, package data) is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["qfex_oms", "qfex_oms.*"]), "qfex_oms.examples", "qfex_oms.configs"],
    package_dir={"qfex_oms.examples": "strategies", "qfex_oms.configs": "config"},
)
