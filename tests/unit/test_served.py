"""What `solo dev` learns of the served modules by importing them in a throwaway process: the classes in
the order they were defined, where their code lives (for --reload), or the import's error."""

from __future__ import annotations

import os

import pytest

from solo.cli.served import ModulesBroken, inspect_modules

GOOD = """\
from solo import DurableObject, rpc


class Zebra(DurableObject):
    @rpc
    def stripe(self, width: int, colour: str = "black") -> int:
        return width


class Aardvark(DurableObject):
    @rpc
    def dig(self) -> None:
        pass
"""

BAD_CLASS = """\
from solo import DurableObject, rpc


class Broken(DurableObject):
    @rpc
    def take(self, things: set) -> int:
        return 1
"""


def inspect(tmp_path, module: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLO_")}
    env["PYTHONPATH"] = str(tmp_path)
    return inspect_modules((module,), env, cwd=tmp_path)


def test_the_classes_come_in_the_order_the_module_defines_them_with_their_parameters(tmp_path):
    (tmp_path / "zoo.py").write_text(GOOD)
    served = inspect(tmp_path, "zoo")
    assert served.names() == ["Zebra", "Aardvark"]
    stripe = served.classes[0].methods["stripe"]
    assert stripe["width"]["required"] and not stripe["colour"]["required"]
    assert stripe["colour"]["schema"] == {"type": "string"}
    assert served.watch == ((str(tmp_path.resolve()), False),)  # a top-level module: its folder alone


def test_a_package_module_is_watched_with_its_package_folder_and_below(tmp_path):
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "objects.py").write_text(GOOD)
    assert inspect(tmp_path, "myapp.objects").watch == ((str((tmp_path / "myapp").resolve()), True),)


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        (BAD_CLASS, "@rpc take: parameter 'things'"),
        ("def broken(:\n", "SyntaxError"),
        ("import no_such_module_here\n", "No module named 'no_such_module_here'"),
    ],
)
def test_a_module_that_does_not_import_is_reported_with_the_users_own_frames(tmp_path, source, shown):
    (tmp_path / "zoo.py").write_text(source)
    with pytest.raises(ModulesBroken) as broken:
        inspect(tmp_path, "zoo")
    message = str(broken.value)
    assert shown in message
    assert "zoo.py" in message
    assert "importlib" not in message and "registry.py" not in message
