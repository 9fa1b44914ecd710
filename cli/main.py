"""Entry point of the ``dnalift`` command line.

Each sub-command lives in its own module of this package and is registered
here; the commands only parse options and call the library API in
:mod:`dnalift`.
"""

from __future__ import annotations

import importlib
import sys

import click

from dnalift import __version__
from dnalift.errors import DnaliftError
from dnalift.fileio import public_names

# (module, command object name) of every sub-command, in --help order.
_COMMANDS = (
    ("dnalift.cli.score", "score"),
    ("dnalift.cli.merge", "merge"),
    ("dnalift.cli.simulate", "simulate"),
    ("dnalift.cli.train", "train"),
    ("dnalift.cli.motifs", "motifs"),
    ("dnalift.cli.plot", "plot"),
    ("dnalift.cli.tile", "tile"),
    ("dnalift.cli.discover", "discover"),
)


def usage_error_line(err: click.UsageError) -> str:
    """One line for a click usage error (bad option value, missing or unknown option):
    ``<command>: <click's message> (see 'dnalift <command> --help')``."""
    names = []
    ctx = err.ctx
    while ctx is not None and ctx.parent is not None:  # the root's name is the program's
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    command = " ".join(reversed(names))
    text = " ".join(err.format_message().split()).rstrip(".")
    return (f"{command}: {text} (see 'dnalift {command} --help')" if command else
            f"{text} (see 'dnalift --help')")


class _Group(click.Group):
    """A click group that prints every error on one line, ``dnalift: error: ...``:
    :class:`DnaliftError` and click usage errors (bad or missing option values, with the
    command and option named) with exit status 2, :class:`OSError` (disk full, I/O error)
    with status 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as err:
            click.echo(f"dnalift: error: {usage_error_line(err)}", err=True)
            ctx.exit(2)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as err:
            click.echo(f"dnalift: error: {usage_error_line(err)}", err=True)
            ctx.exit(2)
        except DnaliftError as err:
            click.echo(f"dnalift: error: {public_names(str(err))}", err=True)
            ctx.exit(2)
        except OSError as err:  # disk full, I/O error, permission lost while writing
            text = public_names(" ".join(str(err).split()))
            click.echo(f"dnalift: error: {text}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dnalift")
def cli() -> None:
    """DeepLIFT contribution scores for DNA-sequence Keras models."""


def _register() -> None:
    for module_name, attr in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue  # command not built yet
            raise
        cli.add_command(getattr(module, attr))


_register()


def main() -> None:
    """Console entry point: signals, exit statuses and output cleanup as in
    :mod:`dnalift.cli.process` (the installed ``dnalift`` script enters there directly)."""
    from dnalift.cli.process import main as process_main
    process_main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
