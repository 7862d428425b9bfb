"""The docs are part of the product: every command has help text and a section, every
configuration key and environment variable is documented."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main
from pydantic import BaseModel

from pipeline import config
from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _commands(command, prefix: str = "invsync"):
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in subcommands.items():
            yield from _commands(sub, f"{prefix} {name}")
    else:
        yield prefix, command


def all_commands() -> list[tuple[str, object]]:
    return list(_commands(typer.main.get_command(app)))


def test_every_command_has_help_text() -> None:
    commands = all_commands()
    assert len(commands) >= 14
    for name, command in commands:
        assert (command.help or "").strip(), f"`{name}` has no help text"


def test_every_command_has_a_section_in_the_docs() -> None:
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (invsync [a-z -]+?)\s*$", reference, flags=re.M))
    for name, _ in all_commands():
        assert name in headings, f"docs/cli.md has no '## {name}' section"


def _keys(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested:
            yield key
            yield from _keys(nested[0], key + ".")
        else:
            yield key


def test_every_configuration_key_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for key in _keys(config.Settings):
        top, _, _ = key.partition(".")
        leaf = key.rpartition(".")[2]
        # a key is documented by its full name, or by its leaf in a table under its section
        in_section = "." in key and f"[{top}" in text and f"`{leaf}`" in text
        assert f"`{key}`" in text or f"[{key}]" in text or f"[[{key}]]" in text or in_section, (
            f"docs/configuration.md does not document `{key}`"
        )


def test_every_environment_variable_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    names = [
        *config.SPAPI_SECRETS, *config.BASE_SECRETS, *config.EBAY_SECRETS,
        *config.ENDPOINT_VARS, config.BASE_REDIRECT_VAR, config.CONFIG_ENV, config.DATA_DIR_ENV,
    ]  # fmt: skip
    for name in names:
        assert f"`{name}`" in text, f"docs/configuration.md does not document {name}"
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in [*config.SPAPI_SECRETS, *config.BASE_SECRETS, *config.EBAY_SECRETS]:
        assert f"{name}=" in example, f".env.example lacks {name}"


def test_every_sellers_toml_key_is_documented() -> None:
    """docs/orchestration.md shows every key sellers.toml takes, and where the code location
    looks for it."""
    from pipeline.orchestration.sellers import SELLERS_ENV, Orchestration, SellerEntry

    text = (DOCS / "orchestration.md").read_text(encoding="utf-8")
    for model in (Orchestration, SellerEntry):
        for key in model.model_fields:
            assert re.search(rf"^{key} = ", text, flags=re.M) or f"[sellers.acme.{key}]" in text, (
                f"docs/orchestration.md does not show the sellers.toml key {key}"
            )
    assert f"${SELLERS_ENV}" in text
    assert "make dagster" in (ROOT / "README.md").read_text(encoding="utf-8")
