"""One clear line and a non-zero exit for every error a user can cause."""

from __future__ import annotations

import sys

import click


class UserError(click.ClickException):
    """A problem with what the user asked for; printed as ``error: ...``."""

    exit_code = 1

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


# Errors from lower layers that describe bad input, not bugs: shown as one line. Named, not
# imported: a command that never loaded a module cannot have raised its error, and importing
# them all would make every command start as slowly as the heaviest.
_INPUT_ERRORS = {
    ("p2pcity.codec", "DecodeError"),
    ("p2pcity.testnet", "TestnetError"),
    ("p2pcity.client", "ClientError"),
}


def _is_input_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    for module, name in _INPUT_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


def run_guarded(command: click.Command, argv: list[str] | None, prog_name: str = "p2pcity") -> int:
    """Run a click command; map every user-caused error to one line and an exit code."""
    try:
        code = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except ValueError as exc:  # our domain errors (IdentityError, GenesisError, ...) subclass it
        click.echo(f"error: {exc}", err=True)
        return 1
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        click.echo(f"error: {exc}", err=True)
        return 1
    return code if isinstance(code, int) else 0


def fail(message: str) -> UserError:
    return UserError(message)


def stderr_line(message: str) -> None:
    print(message, file=sys.stderr)
