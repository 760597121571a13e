"""Maps the top-level role folders onto one installed namespace.

The repo keeps one folder per role (server/, workers/, envs/, clients/, ops/); installed, they are
wildrobot.server, wildrobot.workers, ... so nothing lands in site-packages as a bare `server`.
Everything else about the package is in pyproject.toml.
"""

from setuptools import find_packages, setup

ROLE_DIRS = {
    "wildrobot": "wildrobot",
    "wildrobot.server": "server",
    "wildrobot.workers": "workers",
    "wildrobot.envs": "envs",
    "wildrobot.clients": "clients",
    "wildrobot.ops": "ops",
}

packages = []
for package, folder in ROLE_DIRS.items():
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=ROLE_DIRS)
