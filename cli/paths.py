"""The files a command reads and the files it writes, declared once per command and checked
before any work: an output that is the same file as an input or as another output is refused
(:func:`dnalift.fileio.check_distinct`, exit status 2 through the group's error handling).
Then the command holds the lock of each output while it runs (:mod:`dnalift.locks`): a second
job for the same output, on this machine or another node sharing the file system, is refused
(exit status 2) while the first lives.

Usage, directly above the command function (below the ``click`` decorators)::

    @click.command("tile")
    @click.option("--genome", ...)
    @click.option("--output", ...)
    @files(reads=("genome",), writes=("output",), sidecars={"genome": FASTA_INDEX})
    def tile(genome, output, ...): ...

Each name is a parameter of the command (a repeated option or an argument list counts with
all its values); the messages name it as on the command line (``--genome``, ``SHARDS``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Sequence, TypeVar

import click

from dnalift import locks
from dnalift.fileio import PathArg, check_distinct, labelled_paths

F = TypeVar("F", bound=Callable[..., Any])

#: ``label -> path(s)`` of inputs and outputs beyond the declared parameters (defaults the
#: command fills in, files inside an output directory, names derived from an option).
Implied = Callable[[Mapping[str, Any]], tuple[Mapping[str, PathArg], Mapping[str, PathArg]]]

#: Index files read (or built) next to an input, by suffix -> what they are.
FASTA_INDEX = {".fai": "index"}
MODEL_TASK_NAMES = {".tasks.txt": "task names"}


def param_label(param: click.Parameter) -> str:
    """How a parameter is written on the command line: its long option, else its name."""
    longs = [o for o in param.opts if o.startswith("--")]
    return max(longs, key=len) if longs else param.human_readable_name


def sidecar_paths(label: str, value: PathArg, suffixes: Mapping[str, str]
                  ) -> dict[str, list[str]]:
    """``"LABEL WHAT" -> [path + suffix ...]`` for the index files next to ``value``."""
    if value is None:
        return {}
    values = [value] if isinstance(value, str) else list(value)
    return {f"{label} {what}": [f"{v}{suffix}" for v in values]
            for suffix, what in suffixes.items()}


def declared_paths(params: Mapping[str, Any], command: click.Command, reads: Sequence[str],
                   writes: Sequence[str], sidecars: Mapping[str, Mapping[str, str]]
                   ) -> tuple[dict[str, PathArg], dict[str, PathArg]]:
    """The ``label -> value`` inputs (with their sidecars) and outputs of one invocation."""
    labels = {p.name: param_label(p) for p in command.params}
    inputs: dict[str, PathArg] = {}
    for name in reads:
        inputs[labels[name]] = params[name]
        inputs.update(sidecar_paths(labels[name], params[name], sidecars.get(name, {})))
    return inputs, {labels[name]: params[name] for name in writes}


def files(*, reads: Sequence[str] = (), writes: Sequence[str] = (),
          sidecars: Mapping[str, Mapping[str, str]] | None = None,
          implied: Implied | None = None) -> Callable[[F], F]:
    """Declare a command's input and output parameters; the command first refuses an output
    that is the same file as an input or another output (:class:`InputError`).

    Parameters
    ----------
    reads, writes : sequence of str
        Parameter names of the files read and of the files written.
    sidecars : mapping, optional
        Parameter name -> ``{suffix: what}``: files read next to an input (e.g.
        :data:`FASTA_INDEX`), inputs too.
    implied : callable, optional
        ``params -> (inputs, outputs)``: further labelled paths (see :data:`Implied`).
    """
    def decorate(func: F) -> F:
        @functools.wraps(func)
        def checked(**params: Any) -> Any:
            command = click.get_current_context().command
            inputs, outputs = declared_paths(params, command, reads, writes, sidecars or {})
            if implied is not None:
                more_inputs, more_outputs = implied(params)
                inputs.update(more_inputs)
                outputs.update(more_outputs)
            check_distinct(inputs, outputs)
            with locks.hold([path for _, path in labelled_paths(outputs)]) as taken_over:
                for path, holder in taken_over:
                    click.echo(f"dnalift: took over the lock of {path} from {holder.describe()}"
                               " (no longer running)", err=True)
                return func(**params)
        return checked  # type: ignore[return-value]
    return decorate
