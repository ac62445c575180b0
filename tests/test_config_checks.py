"""What a config check refuses: strict types, unserved addresses, bad class paths, broken checks.

And how `Runtime.start` says whose constructor raised.
"""

from __future__ import annotations

import pytest

import tierd
from tests.topology import daemon, level
from tierd.config import load_config, parse_config
from tierd.testing import runtime_from_dict

ECHO = (
    '[[levels]]\nlevel = 1\n[[levels.daemons]]\nid = "echo"\nclass = "tierd.actors.builtin:Echo"\n'
)


class CheckBreaks(tierd.Daemon):
    """A daemon whose own option check is broken (raises KeyError)."""

    @classmethod
    def check_options(cls, options: dict[str, object]) -> None:
        if options["missing"]:  # the bug on purpose: a KeyError
            return

    def handle(self, message: tierd.Message) -> object:
        return None


def problems(tmp_path, text: str) -> list[str]:
    """Load ``text`` as a config file; its problems, each without the file name (none: [])."""
    path = tmp_path / "topology.toml"
    path.write_text(text)
    try:
        load_config(path)
    except tierd.ConfigError as error:
        return [problem.removeprefix(f"{path}: ") for problem in error.problems]
    return []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ECHO.replace("level = 1", 'level = "2"'),
            "levels[0].level: Input should be a valid integer, not the string '2': "
            "write the number without quotes",
        ),
        (
            ECHO.replace("level = 1\n", 'level = 1\ndurable = "yes"\n'),
            "levels[0].durable: Input should be a valid boolean, not the string 'yes': "
            "write true or false, without quotes",
        ),
        (
            '[runtime]\ngrace_period = "5"\n' + ECHO,
            "runtime.grace_period: Input should be a valid number, not the string '5': "
            "write the number without quotes",
        ),
        ("[runtime]\ninsecure = 1\n" + ECHO, "runtime.insecure: Input should be a valid boolean"),
        (
            ECHO.replace("level = 1\n", "level = 1\nqueue_limit = true\n"),
            "levels[0].queue_limit: Input should be a valid integer",
        ),
        (
            ECHO.replace("level = 1\n", "level = 1.0\n"),
            "levels[0].level: Input should be a valid integer",
        ),
        (
            ECHO + 'restart = { max_restarts = "5" }\n',
            "levels[0].daemons[0].restart.max_restarts: Input should be a valid integer",
        ),
        (
            ECHO + '[[peers]]\nendpoint = "tcp://127.0.0.1:1"\nlevels = [2]\n'
            'heartbeat_interval = "1"\n',
            "peers[0].heartbeat_interval: Input should be a valid number",
        ),
    ],
    ids=[
        "level-string", "durable-string", "grace-string", "insecure-int", "limit-bool",
        "level-float", "restart-string", "peer-string",
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(tmp_path, text, expected):
    """Strict types: a string, a bool or a float where another type belongs is refused."""
    lines = problems(tmp_path, text)
    assert expected in lines[0], lines
    assert len(lines) == 1, lines


def test_a_toml_integer_is_fine_where_a_float_is_expected(tmp_path):
    """`grace_period = 5`, `aging = 1`, `restart.initial_delay = 1`: integers for floats pass."""
    text = "[runtime]\ngrace_period = 5\nsweep_interval = 1\n" + ECHO.replace(
        "level = 1\n", "level = 1\naging = 1\n"
    )
    lines = problems(tmp_path, text + "restart = { initial_delay = 1, window = 10 }\n")
    assert lines == []


def test_a_relay_to_an_address_no_level_serves_is_refused(tmp_path):
    """A Relay's `to` must name a daemon of a local level, or a level a peer serves."""
    relay = ECHO + '[[levels.daemons]]\nid = "relay"\nclass = "tierd.actors.builtin:Relay"\n'
    lines = problems(tmp_path, relay + 'options = { to = "nowhere@9" }\n')
    assert lines == [
        "levels[0].daemons[1].options.to: no level serves 'nowhere@9': this runtime serves "
        "level(s) 1; fix the address, or add level 9 under [[levels]] or [[peers]]"
    ]
    lines = problems(tmp_path, relay + 'options = { to = "nowhere@1" }\n')
    assert lines == [
        "levels[0].daemons[1].options.to: level 1 has no daemon 'nowhere' (it has echo, relay)"
    ]
    peer = '[[peers]]\nendpoint = "tcp://127.0.0.1:5557"\nlevels = [9]\n'
    assert problems(tmp_path, relay + 'options = { to = "anyone@9" }\n' + peer) == []
    assert problems(tmp_path, relay + 'options = { to = "echo@1" }\n') == []


def test_the_relay_check_applies_to_python_configs_too():
    """`parse_config` (and so `tierd.testing.runtime_from_dict`) refuses an unserved `to`."""
    config = {"levels": [level(1, daemon("relay", "Relay", options={"to": "echo@2"}))]}
    with pytest.raises(tierd.ConfigError, match=r"options\.to: no level serves 'echo@2'"):
        parse_config(config)


def test_a_class_with_a_dot_instead_of_a_colon_says_how_to_write_it(tmp_path):
    """`class = "mypkg.badinit.B"` answers "write it as 'mypkg.badinit:B'", not a pattern."""
    lines = problems(tmp_path, ECHO.replace("tierd.actors.builtin:Echo", "mypkg.badinit.B"))
    assert lines == [
        "levels[0].daemons[0].class: class 'mypkg.badinit.B' is not module:Class: "
        "write it as 'mypkg.badinit:B'"
    ]


def test_a_check_options_that_raises_is_one_line(tmp_path):
    """A daemon's own `check_options` raising something else than ValueError: one line, exit 2."""
    text = ECHO.replace("tierd.actors.builtin:Echo", "tests.test_config_checks:CheckBreaks")
    lines = problems(tmp_path, text)
    assert lines == [
        "levels[0].daemons[0]: tests.test_config_checks:CheckBreaks: check_options raised "
        "KeyError: 'missing'"
    ]


def test_a_constructor_that_raises_at_start_is_noted_with_the_daemon():
    """`Runtime.start` re-raises the constructor's error with a note naming the daemon."""
    config = {"levels": [level(1, daemon("echo", "Echo"), daemon("bad", "FailingConstructor"))]}
    runtime = runtime_from_dict(config)
    with pytest.raises(RuntimeError, match="constructor fails on purpose") as raised:
        runtime.start()
    assert raised.value.__notes__ == ["levels[0].daemons[1] (bad@1): cannot start"]


class Forwarder(tierd.Daemon):
    """Declares an address option and checks nothing itself."""

    address_options = ("target",)

    def __init__(self, target: object = None) -> None:
        self.target = target

    def handle(self, message: tierd.Message) -> object:
        return None


def test_an_address_option_that_is_not_an_address_is_one_problem(tmp_path):
    """A declared address option holding a list or a bad string is refused, naming the option."""
    base = ECHO.replace("tierd.actors.builtin:Echo", "tests.test_config_checks:Forwarder")
    assert problems(tmp_path, base + 'options = { target = ["echo@1"] }\n') == [
        "levels[0].daemons[0].options.target: bad address ['echo@1']: expected 'daemon@level'"
    ]
    assert problems(tmp_path, base + 'options = { target = "echo" }\n') == [
        "levels[0].daemons[0].options.target: bad address 'echo': expected 'daemon@level', "
        "e.g. 'echo@2'"
    ]
    assert problems(tmp_path, base) == []
