"""pyproject.toml's extras: `all` holds every other extra's requirements (pip install "kiln[all]" used
to miss the serve extra's speed-ups), `dev` installs the production JSON codec the server tests must
exercise, and dependencies with known advisories have floors above them."""

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

EXTRAS = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"][
    "optional-dependencies"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_all_is_the_union_of_every_extra():
    every = {req.replace(" ", "") for extra, reqs in EXTRAS.items() if extra not in ("all", "dev") for req in reqs}
    listed = {req.replace(" ", "") for req in EXTRAS["all"]}
    assert every - listed == set(), "kiln[all] lacks these"
    assert listed - every == set(), "kiln[all] has requirements no extra names"


def test_dev_installs_the_serve_extras_codec_and_event_loop():
    dev = {_name(req) for req in EXTRAS["dev"]}
    assert {_name(req) for req in EXTRAS["serve"]} <= dev


def test_the_server_tests_run_on_the_production_json_codec():
    import orjson  # noqa: F401 - a plain import: its absence fails, never skips

    import kiln_edge.server.app as app
    assert app.orjson is not None


def _floor(requirement: str) -> tuple:
    match = re.search(r">=\s*([0-9.]+)", requirement)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def test_dependencies_with_advisories_have_floors_above_them():
    floors = {"pyarrow": (17, 0, 0), "python-multipart": (0, 0, 18)}  # CVE-2024-52338; CVE-2024-53981
    for extra, reqs in EXTRAS.items():
        for req in reqs:
            if _name(req) in floors:
                assert _floor(req) >= floors[_name(req)], f"{extra}: {req}"
