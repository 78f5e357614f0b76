"""Beam options given on a command line (`demographics run`, `python -m pipelines.beam.dataflow`): checked before
anything runs, so that a typo is a one-line usage error rather than an option Beam silently discards."""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.errors import UsageError


def check_beam_args(command: str, args: Sequence[str]) -> None:
    """Bad Beam options are bad usage too: an unknown option, a bad value, or a runner Beam does not know. The
    message starts with `command: ` when a command is named."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    class OneLineParser(_BeamArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise UsageError(_prefixed(command, message))

    parser = OneLineParser(allow_abbrev=False, add_help=False)
    pending, seen = list(PipelineOptions.__subclasses__()), set()
    while pending:
        cls = pending.pop()
        if cls not in seen:
            seen.add(cls)
            cls._add_argparse_args(parser)
            pending.extend(cls.__subclasses__())
    known, unknown = parser.parse_known_args(list(args))
    if unknown:
        raise UsageError(_prefixed(command, f"unrecognized arguments: {' '.join(unknown)}"))
    if known.runner:
        from apache_beam.runners.runner import create_runner

        try:
            create_runner(known.runner)
        except (ValueError, ImportError) as err:
            raise UsageError(_prefixed(command, f"--runner {known.runner}: {str(err).splitlines()[0]}")) from None


def _prefixed(command: str, message: str) -> str:
    return f"{command}: {message}" if command else message
