"""pyproject.toml lists every folder of the `solo` package, so that none is left out of the wheel."""

import tomllib

from tests import REPO


def test_every_folder_with_python_code_is_a_listed_subpackage():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {package: REPO / folder for package, folder in setuptools["package-dir"].items()}
    listed = set(setuptools["packages"])

    found = set()
    for package, folder in folders.items():
        for source in folder.rglob("*.py"):
            if "__pycache__" in source.parts:
                continue
            relative = source.parent.relative_to(folder).parts
            found.add(".".join([package, *relative]))

    assert found == listed
