"""`loci import FILE`: a Loci export is restored; a ChatGPT/Claude export or a conversation file is imported.

Chat exports stream (one conversation in memory at a time), print progress with messages/s and
the time left, stop cleanly on Ctrl-C and continue where they stopped when run again.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from engine import CancelToken, InvalidInputError, Scope

from . import chat_exports
from .import_rate import ImportRate
from .importers import FORMATS, load_conversation, without_small_talk


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `loci import` (the subparser is made in app/cli.py)."""
    p.add_argument("file", help="a Loci export, a ChatGPT or Claude export (.zip or conversations.json), "
                                "or a conversation file (JSON, JSONL, transcript, LoCoMo)")
    p.add_argument("--user", dest="user_id", help="whose memories these are (default: default)")
    p.add_argument("--agent", dest="agent_id", help="store under this agent too")
    p.add_argument("--name", help="the user's name, put on their messages (\"I\" in them becomes this name)")
    p.add_argument("--infer", action="store_true", help="also extract facts (slower)")
    p.add_argument("--format", choices=list(FORMATS), default="auto", help="conversation file format")
    p.add_argument("--replace", action="store_true",
                   help="Loci exports: delete every memory in the store first (default: merge)")


def run_import(mem: Any, args: argparse.Namespace, err: TextIO | None = None) -> dict[str, Any]:
    """Restore or import args.file into mem; returns what the command prints."""
    err = err or sys.stderr
    kind = chat_exports.sniff(args.file)
    if kind == chat_exports.LOCI_EXPORT:
        from engine.store import export

        summary = export.restore(mem, args.file, mode="replace" if args.replace else "merge")
        return {"added": summary.added, "skipped": summary.skipped, "removed": summary.removed, "file": args.file}
    scope = Scope(args.user_id or "default", args.agent_id, None)
    token = CancelToken()
    with _cancel_on_interrupt(token, err):
        if kind in chat_exports.KINDS:
            return _chat_export(mem, args, kind, scope, token, err)
        return _conversation(mem, args, scope, token, err)


def _chat_export(mem: Any, args: argparse.Namespace, kind: str, scope: Scope, token: CancelToken,
                 err: TextIO) -> dict[str, Any]:
    from engine.service.importing import import_resumable

    print(f"Reading {args.file} ({chat_exports.KINDS[kind]})…", file=err)
    summary = chat_exports.summarize(args.file)
    first, last = summary.first, summary.last
    span = f", {first:%Y-%m-%d} to {last:%Y-%m-%d}" if first and last else ""
    print(f"{len(summary.conversations):,} conversations, {summary.messages:,} messages{span}; "
          f"storing them as user '{scope.user_id}'.", file=err)
    meter = ProgressMeter(err)
    result = import_resumable(mem, _named(chat_exports.read_conversations(args.file), args.name), scope,
                              total=summary.messages, infer=args.infer, progress=meter, cancel=token)
    meter.close(stopped=result.cancelled)
    return _told(result.added, result.skipped, result.cancelled, summary.messages, args.file, scope,
                 len(summary.conversations))


def _conversation(mem: Any, args: argparse.Namespace, scope: Scope, token: CancelToken,
                  err: TextIO) -> dict[str, Any]:
    from engine.extraction import Cancelled
    from engine.service.importing import import_sessions

    try:
        conv = load_conversation(args.file, args.format)
    except InvalidInputError as exc:
        if args.format != "auto" or "does not exist" in str(exc):
            raise
        raise InvalidInputError(f"{Path(args.file).name} is not a file Loci can import: expected "
                                f"{chat_exports.EXPECTED}, or a conversation file (JSON list of messages, "
                                f"JSON Lines, a 'Name: text' transcript, LoCoMo). Reading it as a "
                                f"conversation: {exc}") from None
    if not args.infer:
        conv = without_small_talk(conv)[0]
    if args.user_id is None and conv.user_id:
        scope = Scope(conv.user_id, scope.agent_id, None)
    meter = ProgressMeter(err)
    try:
        result = import_sessions(mem, conv.sessions, scope, infer=args.infer, progress=meter, cancel=token)
    except Cancelled:
        meter.close(stopped=True)
        return _told(0, 0, True, conv.message_count, args.file, scope, len(conv.sessions))
    meter.close(stopped=result.cancelled)
    return _told(result.added, 0, result.cancelled, conv.message_count, args.file, scope, len(conv.sessions))


def _named(convs: Iterator[chat_exports.ChatConversation], name: str | None) -> Iterator[Any]:
    for conv in convs:
        if name:
            for msg in conv.messages:
                if msg["role"] == "user":
                    msg["name"] = name
        yield conv


def _told(added: int, skipped: int, cancelled: bool, messages: int, file: str, scope: Scope,
          sessions: int) -> dict[str, Any]:
    text = f"Imported {added:,} memor{'y' if added == 1 else 'ies'} from {file} for user '{scope.user_id}'"
    if skipped:
        text += f"; {skipped:,} messages were already imported"
    text += "."
    if cancelled:
        text += " Stopped before the end: run the same command again to continue where it stopped."
    return {"added": added, "skipped_messages": skipped, "messages": messages, "sessions": sessions,
            "cancelled": cancelled, "user_id": scope.user_id, "file": file, "message": text}


class _cancel_on_interrupt:
    """Ctrl-C sets the token (the add in flight finishes, nothing half-written); a second one aborts."""

    def __init__(self, token: CancelToken, err: TextIO) -> None:
        self.token, self.err = token, err
        self.previous: Any = None

    def __enter__(self) -> None:
        def handler(_sig: int, _frame: Any) -> None:
            if self.token.is_cancelled:
                raise KeyboardInterrupt
            print("\nStopping after the current batch (Ctrl-C again to abort)…", file=self.err)
            self.token.cancel()
        try:
            self.previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: no handler, the caller cancels
            self.previous = None

    def __exit__(self, *_exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class ProgressMeter:
    """progress(done, total) printed as messages, messages/s and time left, at most twice a second;
    close() prints where the import ended when the last step fell between two printed lines."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.rate = ImportRate(clock)
        self.shown = -1e9
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.line = ""
        self.latest: tuple[int, int] | None = None  # the last step given
        self.printed: tuple[int, int] | None = None  # the last step printed

    def __call__(self, done: int, total: int) -> None:
        now = self.rate.step(done)
        self.latest = (done, total)
        if now - self.shown < (0.5 if self.tty else 5.0) and done < total:
            return
        self.shown = now
        self._print(self.rate.describe(done, total, now))

    def close(self, stopped: bool = False) -> None:
        """End the progress: the last step is printed if it was not (without a time left when the
        import stopped before the end), then the line is ended on a terminal."""
        if self.latest is not None and (self.latest != self.printed or stopped):
            done, total = self.latest
            self._print(self.rate.describe(done, total, self.rate.clock(), left=not stopped))
        if self.tty and self.line:
            print(file=self.out)

    def _print(self, line: str) -> None:
        self.printed = self.latest
        last, self.line = self.line, line
        # on a terminal the line is rewritten in place: blank what a longer line before it left
        print(("\r" + self.line.ljust(len(last))) if self.tty else self.line, end="" if self.tty else "\n",
              file=self.out, flush=True)
