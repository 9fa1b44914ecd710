"""Entry point of the ``dnalift`` command line.

Each sub-command lives in its own module of this package and is registered
here; the commands only parse options and call the library API in
:mod:`dnalift`. A command's module is imported only when that command runs (or
``--help`` lists it), so ``dnalift score`` does not pay for pandas or matplotlib.
"""

from __future__ import annotations

import importlib
import sys

import click

from dnalift import __version__
from dnalift.errors import DnaliftError
from dnalift.fileio import public_names

# command name -> (module, command object name) of every sub-command.
_COMMANDS = {
    "score": ("dnalift.cli.score", "score"),
    "merge": ("dnalift.cli.merge", "merge"),
    "simulate": ("dnalift.cli.simulate", "simulate"),
    "train": ("dnalift.cli.train", "train"),
    "motifs": ("dnalift.cli.motifs", "motifs"),
    "plot": ("dnalift.cli.plot", "plot"),
    "tile": ("dnalift.cli.tile", "tile"),
    "discover": ("dnalift.cli.discover", "discover"),
}


class _LazyCommands(dict):
    """``name -> click.Command``, each command's module imported on first access."""

    def __missing__(self, name: str) -> click.Command:
        if name not in _COMMANDS:
            raise KeyError(name)
        module_name, attr = _COMMANDS[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                raise KeyError(name) from None  # command not built yet
            raise
        command = self[name] = getattr(module, attr)
        return command


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
    with status 1. Commands are imported on first use (:class:`_LazyCommands`)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        try:
            return self.commands[cmd_name]
        except KeyError:
            return None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in _COMMANDS if self.get_command(ctx, name) is not None)

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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "show_default": True})
@click.version_option(__version__, prog_name="dnalift")
def cli() -> None:
    """DeepLIFT contribution scores for DNA-sequence Keras models."""


cli.commands = _LazyCommands()


def main() -> None:
    """Console entry point: signals, exit statuses and output cleanup as in
    :mod:`dnalift.cli.process` (the installed ``dnalift`` script enters there directly)."""
    from dnalift.cli.process import main as process_main
    process_main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
